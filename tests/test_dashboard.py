"""The deliverability dashboard (issue #16): a relay that has handled a scripted mix of
outcomes (deliveries, a refusal at delivery, a deferral, a bounce report and a complaint
coming back to its MX listener) serves the page; headless Chromium loads it, the test
reads the numbers from the DOM Chromium built and keeps a screenshot in
test-artifacts/dashboard.png. `relay report --html` writes the same figures to one
self-contained file."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from relay.contract.errors import UserError
from relay.dashboardserver import WebEndpoint, check_exposure
from tests.bouncemail import arf, dsn
from tests.conftest import require_tool
from tests.knot import free_port
from tests.test_bounces import mx_world, to_mx
from tests.test_delivery import Clock, run, submit, worker_for

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "chromium"


class Figures(HTMLParser):
    """The text of every element carrying one of the dashboard's data- attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}
        self._open: list[str | None] = []
        self.rows: list[dict[str, str | None]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "tr":
            self.rows.append(named)
        for attr in ("src", "href"):
            if (named.get(attr) or "").startswith(("http:", "https:", "//")):
                self.external.append(f"{tag} {attr}={named[attr]}")
        if tag in ("script", "link", "iframe", "img"):
            self.external.append(tag)
        key = next((f"{k}={v}" for k, v in attrs if k.startswith("data-") and v), None)
        if key and self.rows and (domain := self.rows[-1].get("data-domain")):
            key = f"{domain}/{key}"
        self._open.append(key)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1]:
            self.found.setdefault(self._open[-1], data.strip())


def figures(html: str) -> Figures:
    parser = Figures()
    parser.feed(html)
    return parser


def chromium(*args: str, profile: Path) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-dev-shm-usage",
           f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def handled(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The relay after the scripted mix: 6 messages to 9 recipients from two domains;
    7 delivered, 1 refused (hard), 1 deferred; then a bounce report for one delivered
    recipient and a complaint about another come back to the MX listener. And a `dns
    verify` against Knot, where example.com has its SPF include (and the relay's SPF
    record is there) but no DKIM key or return-path records."""
    for world in mx_world(tmp_path, zones=("example.com", "example.net")):
        script(world)
        yield world


def script(world: dict[str, Any]) -> None:
    for dest in world["dests"].values():
        dest.recorder.hard.add("gone@example.org")
        dest.recorder.soft.add("busy@example.org")
    relay = world["relay"]
    submit(relay, "ok1@example.org", "ok2@example.org")
    submit(relay, "ok3@example.org")
    submit(relay, "ok4@example.org", "ok5@example.org", "ok6@example.org")
    submit(relay, "gone@example.org")
    submit(relay, "busy@example.org")
    submit(relay, "ok7@example.org", sender="alerts@rsa.example")
    assert run(worker_for(world, Clock())) == 6
    paths = {m.rcpt_tos[0]: m.mail_from for m in world["dests"]["mx1"].recorder.messages}
    assert (
        to_mx(world, paths["ok1@example.org"], arf(paths["ok1@example.org"], "ok1@example.org"))[0]
        == 250
    )
    assert (
        to_mx(world, paths["ok2@example.org"], dsn(paths["ok2@example.org"], "ok2@example.org"))[0]
        == 250
    )
    relay.events_seen("complaint")
    knot = world["knot"]
    knot.update(
        "example.com", add=[("example.com", "TXT", '"v=spf1 include:_spf.example.net ~all"')]
    )
    knot.update("example.net", add=[("_spf.example.net", "TXT", '"v=spf1 ip4:192.0.2.10 ~all"')])
    verify = relay.postform(
        "dns", "verify", "--nameserver", knot.server, "--domain", "example.com", check=False
    )
    assert verify.returncode == 2 and "1 of 4 record(s) ok" in verify.stdout
    relay.wait_for(lambda: relay.events("policy_reloaded"), what="the policy with the check")


EXPECTED = {
    "data-kpi=accepted": "6",
    "data-kpi=recipients": "9",
    "data-kpi=delivered": "7",
    "data-kpi=deferred": "1",
    "data-kpi=hard_bounces": "2",
    "data-kpi=soft_bounces": "0",
    "data-kpi=complaints": "1",
    "data-kpi=suppressions_added": "3",
    "data-rate=bounce_rate": "22.22 %",  # 2 / (7 + 2)
    "data-rate=complaint_rate": "14.29 %",  # 1 / 7
    "data-limit=recipients_today": "9",
    "data-queue=messages": "1",
    "data-usage=emails": "9",
    "example.com/data-col=accepted": "5",
    "example.com/data-col=delivered": "6",
    "example.com/data-col=hard_bounces": "2",
    "example.com/data-col=complaints": "1",
    "rsa.example/data-col=accepted": "1",
    "rsa.example/data-col=delivered": "1",
    "rsa.example/data-col=hard_bounces": "0",
    "data-dns=spf": "ok",
    "data-dns=dkim": "missing",
    "data-dns=dmarc": "–",  # not declared for example.com: nothing to check
}


def test_chromium_shows_the_numbers_of_a_scripted_mix_and_a_screenshot(handled, tmp_path) -> None:
    require_tool(CHROMIUM)
    url = f"http://127.0.0.1:{handled['metrics']}/"
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile")
    seen = figures(dom)
    assert {k: seen.found.get(k) for k in EXPECTED} == EXPECTED
    assert seen.found["data-dns=checked_on"] == datetime.now(UTC).strftime("%Y-%m-%d")
    assert seen.external == []  # nothing fetched from anywhere: it renders offline
    levels = [r for r in seen.rows if r.get("data-domain") == "example.com"]
    assert levels, "no per-domain row for example.com"
    assert "critical" in dom  # 22 % bounces and 14 % complaints are past both thresholds
    # Per hour and per day: overall, and for each of the two sending domains.
    assert dom.count('<svg class="chart"') == 2 + 2 * 2
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    chromium(f"--screenshot={shot}", "--window-size=1200,2600", url, profile=tmp_path / "p2")
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_html_is_one_self_contained_file_with_the_same_numbers(handled) -> None:
    relay = handled["relay"]
    out = relay.folder / "report.html"
    done = relay.postform("relay", "report", "--html", str(out), "--since", "1d")
    assert "Wrote" in done.stdout and out.stat().st_size > 5_000
    seen = figures(out.read_text())
    assert {k: seen.found.get(k) for k in EXPECTED} == EXPECTED
    assert seen.external == []
    data = json.loads(relay.postform("relay", "report", "--json", "--since", "1d").stdout)
    assert data["totals"]["delivered"] == 7 and data["levels"]["bounce_rate"] == "critical"
    assert data["bounce_reasons"][0][1] == 1 and "5.1.1" in data["bounce_reasons"][0][0]
    assert data["queue"]["deferral_reasons"] == [["451 4.2.1 Mailbox busy, try again later", 1]]
    hours = [h for h in data["hourly"] if h["accepted"]]
    assert sum(h["accepted"] for h in hours) == 6
    text = relay.postform("relay", "report", "--since", "1d").stdout
    assert "accepted 6 messages to 9 recipients" in text and "rsa.example: 1 accepted" in text


def test_the_json_endpoint_serves_the_same_data(handled) -> None:
    url = f"http://127.0.0.1:{handled['metrics']}/dashboard.json"
    with urllib.request.urlopen(url, timeout=30) as reply:
        data = json.loads(reply.read())
        assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert data["domains"]["example.com"]["totals"]["complaints"] == 1
    assert data["limits"]["recipients_today"] == 9


def test_a_token_guards_the_dashboard_and_beyond_loopback_one_is_required() -> None:
    port = free_port()
    web = WebEndpoint(f"127.0.0.1:{port}", lambda: {"x": 1}, None, "s3cret-token").start()
    try:
        url = f"http://127.0.0.1:{port}/dashboard.json"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
        refused.value.close()
        wrong = urllib.request.Request(url, headers={"Authorization": "Bearer nope"})
        with pytest.raises(urllib.error.HTTPError) as refused_again:
            urllib.request.urlopen(wrong, timeout=10)
        assert refused_again.value.code == 401
        refused_again.value.close()
        right = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret-token"})
        with urllib.request.urlopen(right, timeout=10) as reply:
            assert json.loads(reply.read()) == {"x": 1}
    finally:
        web.close()
    port = free_port()  # IPv6 loopback too (the address family follows the address)
    web = WebEndpoint(f"[::1]:{port}", lambda: {"v6": True}, None, None).start()
    try:
        with urllib.request.urlopen(f"http://[::1]:{port}/dashboard.json", timeout=10) as got:
            assert json.loads(got.read()) == {"v6": True}
    finally:
        web.close()
    with pytest.raises(UserError, match="POSTFORM_DASHBOARD_TOKEN"):
        check_exposure("0.0.0.0:8080", None)
    check_exposure("[::1]:8080", None)  # loopback needs none
    check_exposure("0.0.0.0:8080", "token")
