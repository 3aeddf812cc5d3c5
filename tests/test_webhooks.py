"""Relay webhooks (issue #16): the relay POSTs delivery events, signed with HMAC-SHA256
(Stripe's scheme), from a persistent outbox, at least once, retried with backoff, never
holding SMTP. Tested with the real relay process delivering to a local SMTP server (its
smarthost) and a local HTTP receiver that can fail, hang past the timeout, and recover.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import io
import json
import smtplib
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.policy import build_policy
from relay.contract.policy import RelayPolicy
from relay.contract.settings import Webhook
from relay.events import EventLog
from relay.webhookpayload import payload
from relay.webhooktap import WebhookTap
from tests.bouncemail import arf, dsn
from tests.destinations import Destination, collect_stopped_servers
from tests.knot import free_port
from tests.relayproc import RelayProcess, default_config, message, queue_id_of

SECRETS = {"/all": "s3cret-all", "/bounces": "s3cret-bounces"}
ALL_TYPES = "[delivered, bounced, complaint, suppressed, deferred]"


def verify(secret: str, headers: Any, body: bytes, tolerance: float = 300) -> bool:
    """What a receiver does (the README's few lines): the signature over "<t>.<body>"
    with the shared secret, and a timestamp no older than 5 minutes."""
    fields = dict(part.split("=", 1) for part in headers["X-Postform-Signature"].split(","))
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > tolerance or headers["X-Postform-Timestamp"] != fields["t"]:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


class Receiver:
    """A webhook endpoint on 127.0.0.1. `mode`: ok (verify, record, 200), fail (500) or
    hang (no answer until released: past the relay's timeout)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.mode = "ok"
        self.attempts: list[tuple[str, str, float]] = []  # path, mode, when
        self.received: list[tuple[str, dict[str, Any], dict[str, str], bytes]] = []
        self.hanging = 0  # requests held right now
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.request(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def request(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        mode = self.mode
        self.attempts.append((handler.path, mode, time.monotonic()))
        if mode == "hang":
            self.hanging += 1
            self.release.wait(15)
            self.hanging -= 1
            return  # the relay gave up long ago: close without an answer
        if mode == "fail":
            handler.send_response(500)
        elif verify(self.secrets[handler.path], handler.headers, body):
            self.received.append((handler.path, json.loads(body), dict(handler.headers), body))
            handler.send_response(200)
        else:
            handler.send_response(401)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def set(self, mode: str) -> None:
        self.mode = mode
        if mode != "hang":
            self.release.set()
            self.release = threading.Event()

    def bodies(self, path: str = "/all") -> list[dict[str, Any]]:
        return [body for p, body, _, _ in list(self.received) if p == path]

    def stop(self) -> None:
        self.set("ok")
        self.server.shutdown()
        self.server.server_close()


def hook(name: str, url: str, events: str, secret_env: str, **extra: object) -> str:
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return (
        f"    - {{name: {name}, url: '{url}', events: {events}, secret_env: {secret_env}{more}}}\n"
    )


def relay_config(smarthost: int, hooks: str) -> str:
    extra = f"  smarthost: {{host: 127.0.0.1, port: {smarthost}, tls: none}}\n"
    if hooks:
        extra += "  webhooks:\n" + hooks
    return default_config().replace("  ipv4: [192.0.2.10]\n", "  ipv4: [192.0.2.10]\n" + extra)


def wait(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A receiver, an SMTP server standing in for the smarthost, and a relay folder
    (started by each test with the webhooks it needs)."""
    monkeypatch.setenv("PF_TEST_HOOK_ALL", SECRETS["/all"])
    monkeypatch.setenv("PF_TEST_HOOK_BOUNCES", SECRETS["/bounces"])
    monkeypatch.delenv("PF_TEST_HOOK_UNSET", raising=False)
    receiver = Receiver(SECRETS)
    mx = Destination("127.0.0.1", free_port()).start()
    made: list[RelayProcess] = []

    def start(hooks: str, *args: str, relay: RelayProcess | None = None) -> RelayProcess:
        if relay is None:
            relay = RelayProcess(tmp_path / "relay", config=relay_config(mx.port, hooks))
            made.append(relay)
        return relay.start(*args, deliver=True)

    yield {"receiver": receiver, "mx": mx, "start": start, "folder": tmp_path / "relay"}
    for relay in made:
        if relay.proc is not None:
            relay.stop()
    receiver.stop()
    mx.stop()
    collect_stopped_servers()


def submit(relay: RelayProcess, *rcpts: str) -> str:
    client = relay.smtp()
    try:
        client.mail("noreply@example.com")
        for rcpt in rcpts:
            assert client.rcpt(rcpt)[0] == 250
        code, reply = client.data(message(to=", ".join(rcpts)))
    finally:
        client.quit()
    assert code == 250
    return queue_id_of(reply)


def to_mx(port: int, rcpt: str, data: bytes) -> int:
    client = smtplib.SMTP("127.0.0.1", port, local_hostname="mx.example.org", timeout=20)
    try:
        client.ehlo()
        client.mail("")
        assert client.rcpt(rcpt)[0] == 250
        return client.data(data)[0]
    finally:
        client.quit()


def scraped(port: int, prefix: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_each_webhook_gets_the_signed_events_it_asked_for(world) -> None:
    receiver: Receiver = world["receiver"]
    hooks = (
        hook("all", receiver.url("/all"), ALL_TYPES, "PF_TEST_HOOK_ALL")
        + hook("bounces", receiver.url("/bounces"), "[bounced, complaint]", "PF_TEST_HOOK_BOUNCES")
        + hook("unsigned", receiver.url("/unsigned"), "[delivered]", "PF_TEST_HOOK_UNSET")
    )
    mx_port = free_port()
    relay = world["start"](hooks, "--listen", f"127.0.0.1:{mx_port}/mx")
    world["mx"].recorder.hard.add("gone@example.org")
    world["mx"].recorder.soft.add("busy@example.org")
    qid = submit(relay, "ok@example.org", "ok2@example.org", "gone@example.org", "busy@example.org")
    wait(lambda: len(receiver.bodies()) >= 4, 20, "delivered, bounced, suppressed, deferred")
    paths = {m.rcpt_tos[0]: m.mail_from for m in world["mx"].recorder.messages}
    ok, ok2 = paths["ok@example.org"], paths["ok2@example.org"]
    assert to_mx(mx_port, ok, arf(ok, "ok@example.org")) == 250  # a complaint
    assert to_mx(mx_port, ok2, dsn(ok2, "ok2@example.org")) == 250  # a bounce report
    wait(lambda: len(receiver.bodies()) >= 7 and len(receiver.bodies("/bounces")) >= 3, 20, "all")
    time.sleep(1.0)  # nothing more comes

    got = sorted((b["type"], b["data"]["recipient"]) for b in receiver.bodies())
    assert got == [
        ("bounced", "gone@example.org"),
        ("bounced", "ok2@example.org"),
        ("complaint", "ok@example.org"),
        ("deferred", "busy@example.org"),
        ("delivered", "ok2@example.org"),
        ("delivered", "ok@example.org"),
        ("suppressed", "gone@example.org"),
    ]
    only_bounces = sorted((b["type"], b["data"]["recipient"]) for b in receiver.bodies("/bounces"))
    assert only_bounces == [
        ("bounced", "gone@example.org"),
        ("bounced", "ok2@example.org"),
        ("complaint", "ok@example.org"),
    ]
    by_kind = {(b["type"], b["data"]["recipient"]): b for b in receiver.bodies()}
    delivered = by_kind[("delivered", "ok@example.org")]
    assert delivered["relay"] == "relay.test" and len(delivered["id"]) == 32
    assert delivered["data"]["queue_id"] == qid
    assert delivered["data"]["sender"] == "noreply@example.com"
    assert delivered["data"]["message_id"].startswith("<")
    assert delivered["data"]["reply"].startswith("250")
    assert by_kind[("bounced", "gone@example.org")]["data"]["source"] == "delivery"
    assert by_kind[("bounced", "gone@example.org")]["data"]["bounce"] == "hard"
    assert by_kind[("bounced", "ok2@example.org")]["data"]["source"] == "report"
    assert by_kind[("bounced", "ok2@example.org")]["data"]["sender"] == "noreply@example.com"
    assert by_kind[("suppressed", "gone@example.org")]["data"]["reason"] == "HARDBOUNCE"
    assert by_kind[("suppressed", "gone@example.org")]["data"]["added"] is True  # newly
    assert by_kind[("complaint", "ok@example.org")]["data"]["sender_domain"] == "example.com"
    assert "retry_at" in by_kind[("deferred", "busy@example.org")]["data"]
    for path, body, headers, raw in receiver.received:
        assert headers["X-Postform-Event-Id"] == body["id"]
        assert headers["User-Agent"] == "postform-relay"
        assert headers["Content-Type"] == "application/json"
        other = SECRETS["/bounces" if path == "/all" else "/all"]
        assert verify(SECRETS[path], headers, raw) and not verify(other, headers, raw)
        assert not verify(SECRETS[path], headers, raw.replace(b"}", b" }", 1))  # tampered
        assert b"Hi there" not in raw and b"password" not in raw
    assert len(receiver.attempts) == len(receiver.received)  # every request verified at once
    # Without its secret a webhook gets nothing (never an unsigned request), and says why.
    assert [a for a in receiver.attempts if a[0] == "/unsigned"] == []
    (missing,) = relay.events_seen("webhook_secret_missing")
    assert (missing["webhook"], missing["secret_env"]) == ("unsigned", "PF_TEST_HOOK_UNSET")


def test_a_failing_then_hanging_endpoint_loses_nothing_and_never_holds_smtp(world) -> None:
    receiver: Receiver = world["receiver"]
    receiver.set("fail")
    relay = world["start"](hook("all", receiver.url("/all"), "[delivered]", "PF_TEST_HOOK_ALL",
                                timeout=4))  # fmt: skip
    queued = [submit(relay, "first@example.org")]
    wait(lambda: receiver.attempts, 10, "the first attempt")
    receiver.set("hang")  # the retry (after ~5 s) hangs past the relay's 4 s timeout
    wait(lambda: receiver.hanging, 15, "a hanging attempt")
    for n in range(3):
        started = time.monotonic()
        queued.append(submit(relay, f"while-hanging-{n}@example.org"))
        assert time.monotonic() - started < 1.5, "SMTP waited for the webhook"
    hung_at = receiver.attempts[-1][2]
    assert time.monotonic() < hung_at + 4, "made while the relay still waited for the endpoint"
    wait(lambda: time.monotonic() > hung_at + 5, 10, "the relay's timeout (4 s) to pass")
    assert receiver.bodies() == []
    receiver.set("ok")
    wait(lambda: len(receiver.bodies()) >= 4, 40, "every event after the recovery")
    modes = [mode for _, mode, _ in receiver.attempts]
    assert modes[:2] == ["fail", "hang"] and "ok" in modes
    assert {b["data"]["queue_id"] for b in receiver.bodies()} == set(queued)
    assert all(b["type"] == "delivered" for b in receiver.bodies())
    failed = relay.events_seen("webhook_failed")
    assert failed[0]["webhook"] == "all" and failed[0]["error"] == "HTTP 500"
    relay.events_seen("webhook_recovered")


def test_the_outbox_survives_a_restart_and_is_bounded(world) -> None:
    receiver: Receiver = world["receiver"]
    receiver.set("fail")
    metrics = free_port()
    hooks = hook("all", receiver.url("/all"), "[delivered]", "PF_TEST_HOOK_ALL", max_pending=3)
    relay = world["start"](hooks, "--metrics", f"127.0.0.1:{metrics}")
    queued = [submit(relay, f"r{n}@example.org") for n in range(5)]
    relay.events_seen("delivered", 5)
    dropped = relay.events_seen("webhook_dropped")
    assert dropped[0]["webhook"] == "all" and dropped[0]["max_pending"] == 3
    series = 'postform_webhook_events_total{outcome="dropped",webhook="all"}'
    wait(lambda: scraped(metrics, series).get(series) == 2.0, 10, "2 dropped counted")
    wait(lambda: scraped(metrics, "postform_webhook_outbox_events{").get(
        'postform_webhook_outbox_events{webhook="all"}') == 3.0, 15, "3 pending")  # fmt: skip
    assert relay.stop() == 0
    assert sum(e["dropped"] for e in relay.events("webhook_dropped")) == 2  # said by the stop
    outbox = world["folder"] / "state" / "relay" / "webhooks.sqlite"
    assert outbox.stat().st_mode & 0o777 == 0o600
    assert receiver.bodies() == []

    receiver.set("ok")
    world["start"]("", relay=relay)  # the events waited for the endpoint across the restart
    wait(lambda: len(receiver.bodies()) >= 3, 15, "the kept events")
    time.sleep(1.0)
    got = [b["data"]["queue_id"] for b in receiver.bodies()]
    assert len(got) == 3 and len(set(got)) == 3 and set(got) <= set(queued)


def test_a_reload_adds_and_removes_webhooks_without_a_restart(world) -> None:
    receiver: Receiver = world["receiver"]
    receiver.set("fail")
    relay = world["start"](hook("old", receiver.url("/all"), "[delivered]", "PF_TEST_HOOK_ALL"))
    submit(relay, "before@example.org")
    wait(lambda: receiver.attempts, 10, "an attempt")
    receiver.set("ok")
    config = relay.folder / "postform.yaml"
    config.write_text(config.read_text().replace("{name: old,", "{name: new,"))
    relay.apply()
    (removed,) = relay.events_seen("webhook_removed")
    assert (removed["webhook"], removed["deleted"]) == ("old", 1)
    qid = submit(relay, "after@example.org")
    wait(lambda: receiver.bodies(), 15, "the new webhook's event")
    time.sleep(1.0)
    assert [b["data"]["queue_id"] for b in receiver.bodies()] == [qid]


def test_every_worker_feeds_the_outbox_and_one_sends(world) -> None:
    receiver: Receiver = world["receiver"]
    relay = world["start"](
        hook("all", receiver.url("/all"), "[delivered]", "PF_TEST_HOOK_ALL"), "--workers", "2"
    )
    relay.wait_for(lambda: len(relay.events("listening")) == 4, what="both workers")
    queued = [submit(relay, f"w{n}@example.org") for n in range(8)]  # spread over both
    wait(lambda: len(receiver.bodies()) >= 8, 20, "8 delivered events")
    time.sleep(1.0)
    bodies = receiver.bodies()
    assert sorted(b["data"]["queue_id"] for b in bodies) == sorted(queued)  # each once
    # The sender and Message-ID of messages another worker accepted are known too.
    assert all(b["data"]["sender"] == "noreply@example.com" for b in bodies)
    assert all(b["data"]["message_id"].startswith("<") for b in bodies)


def test_an_outbox_that_cannot_be_written_never_breaks_the_event_log(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    hooks = (Webhook("app", "http://127.0.0.1:9/", ("delivered",), "S"),)
    policy = build_policy({}, serial=1, lineage="L")
    policy = replace(policy, relay=replace(policy.relay, webhooks=hooks))
    stream = io.StringIO()
    log = EventLog(stream=stream)
    tap = WebhookTap(tmp_path / "file" / "webhooks.sqlite", lambda: policy, log, None)
    log.tap(tap)
    tap.stop()  # as at a relay's stop: each record is written at once, not by the thread
    for n in range(3):
        log.emit("delivered", queue_id="Q", recipient=f"r{n}@example.org", password="x")
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    # Said once a minute, not once an event: the error, and what it cost.
    assert events == ["delivered", "webhook_error", "webhook_dropped", "delivered", "delivered"]
    assert tap in log._taps  # still tapping: the next event may find the disk writable
    body = payload({"ts": "t", "event": "delivered", "password": "x", "body": "y"}, "d", "r", None)
    assert body["data"] == {}  # only the fields named for webhooks go out


def test_the_policy_carries_webhooks_but_never_their_secret() -> None:
    hooks = [
        {
            "name": "app",
            "url": "https://hooks.example.com/postform",
            "events": ["delivered", "bounced"],
            "secret_env": "APP_HOOK_SECRET",
            "timeout": 2.5,
            "max_pending": 10,
        }
    ]
    resources = {
        "relay": {"type": "relay", "name": None, "attributes": {"webhooks": hooks}, "computed": {}}
    }
    policy = build_policy(resources, serial=1, lineage="L")
    (webhook,) = policy.relay.webhooks
    assert webhook.events == ("delivered", "bounced") and webhook.timeout == 2.5
    assert webhook.secret_env == "APP_HOOK_SECRET" and webhook.max_pending == 10
    document = json.loads(json.dumps(policy.to_dict()))
    assert document["relay"]["webhooks"][0]["secret_env"] == "APP_HOOK_SECRET"
    assert RelayPolicy.from_dict(document) == policy
    del document["relay"]["webhooks"]  # a document from before webhooks still reads
    assert RelayPolicy.from_dict(document).relay.webhooks == ()


WEBHOOK_CONFIG = """\
version: 1
state: {path: state/state.json}
relay:
  hostname: smtp.example.net
  webhooks:
    - name: app
      url: https://hooks.example.com/postform
      events: [delivered, bounced]
      secret_env: APP_HOOK_SECRET
domains:
  example.com:
    dkim: [{selector: s1, algorithm: ed25519}]
senders: [noreply@example.com]
"""


def test_plan_shows_a_changed_webhook(tmp_path: Path, cli) -> None:
    (tmp_path / "postform.yaml").write_text(WEBHOOK_CONFIG)
    assert cli(tmp_path, "apply", "--auto-approve").code == 0
    assert cli(tmp_path, "plan", "--detailed-exitcode").code == 0  # applied: no change
    changed = WEBHOOK_CONFIG.replace("/postform", "/v2").replace("bounced]", "bounced, complaint]")
    (tmp_path / "postform.yaml").write_text(changed)
    plan = cli(tmp_path, "plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "# relay will be updated in place" in plan.out
    assert "~ webhooks = [" in plan.out
    assert '"url": "https://hooks.example.com/postform"' in plan.out
    assert '+ {"events": ["delivered", "bounced", "complaint"]' in plan.out
    assert '"url": "https://hooks.example.com/v2"' in plan.out
    md = cli(tmp_path, "plan", "--markdown").out
    assert "| update in place | `relay` | webhooks: " in md


@pytest.mark.parametrize(
    ("hooks", "where", "message"),
    [
        (
            "    - {name: app, url: 'http://h.example/x', events: [delivered, opened], "
            "secret_env: S}\n",
            "6:66: relay.webhooks[0].events[1]:",
            "'opened' is not one of: delivered, bounced, complaint, suppressed, deferred",
        ),
        (
            "    - {name: app, url: 'http://h.example/x', events: [delivered], secret_env: S}\n"
            "    - {name: app, url: 'http://h.example/y', events: [bounced], secret_env: S}\n",
            "7:14: relay.webhooks[1].name:",
            "duplicate webhook name 'app' (same as relay.webhooks[0])",
        ),
        (
            "    - {name: App, url: 'http://h.example/x', events: [delivered], secret_env: S}\n",
            "6:14: relay.webhooks[0].name:",
            "'App' is not a valid webhook name",
        ),
        (
            "    - {name: app, url: 'https://u:pw@h.example/', events: [delivered], "
            "secret_env: S}\n",
            "6:24: relay.webhooks[0].url:",
            "a password never goes in the config",
        ),
        (
            "    - {name: app, url: 'ftp://h.example/', events: [delivered], secret_env: S}\n",
            "6:24: relay.webhooks[0].url:",
            "is not an http:// or https:// URL",
        ),
        (
            "    - {name: app, url: 'http://h.example/', events: [delivered], "
            "secret_env: 'my secret'}\n",
            "6:78: relay.webhooks[0].secret_env:",
            "is not an environment variable name",
        ),
    ],
)
def test_a_webhook_config_error_names_its_place(
    tmp_path: Path, hooks: str, where: str, message: str
) -> None:
    config = tmp_path / "postform.yaml"
    config.write_text(
        "version: 1\nstate: {path: state/state.json}\nrelay:\n  hostname: smtp.example.net\n"
        f"  webhooks:\n{hooks}"
    )
    with pytest.raises(ConfigError) as info:
        load_config(config)
    rendered = [str(r) for r in info.value.reasons]
    assert any(r.startswith(f"{config}:{where}") and message in r for r in rendered), rendered


def test_a_retiring_hosts_delivery_process_sends_its_own_webhook_events(world) -> None:
    """`relay deliver` (the delivery role run apart) feeds the outbox; with --until-empty,
    when no relay serves the folder any more, it sends them itself before it exits."""
    receiver: Receiver = world["receiver"]
    hooks = hook("all", receiver.url("/all"), "[delivered]", "PF_TEST_HOOK_ALL")
    relay = RelayProcess(world["folder"], config=relay_config(world["mx"].port, hooks))
    relay.start()  # submission only: --no-delivery
    try:
        qid = submit(relay, "retiring@example.org")
    finally:
        relay.stop()
    assert receiver.bodies() == []  # nothing was delivered yet
    done = relay.postform("relay", "deliver", "--until-empty", check=False)
    assert done.returncode == 0, done.stderr
    # Sent before the command returned, not left in the outbox.
    assert [(b["type"], b["data"]["queue_id"]) for b in receiver.bodies()] == [("delivered", qid)]
    assert "webhook_events_left" not in done.stderr


def test_an_endpoint_that_trickles_its_answer_is_cut_off_at_the_deadline() -> None:
    """The socket timeout is per read: an answer sent a byte every half second would hold
    the request (its thread and socket) for hours without the overall deadline."""
    import socket as socketlib

    from relay.webhookhttp import post

    listener = socketlib.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
                if stop.wait(0.5):
                    return
                with contextlib.suppress(OSError):
                    conn.sendall(bytes([byte]))

    server = threading.Thread(target=trickle, daemon=True)
    server.start()
    started = time.monotonic()
    try:
        with pytest.raises((OSError, http.client.HTTPException)):
            post(f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}", {}, timeout=1.0)
        assert time.monotonic() - started < 10.0  # 1 s + 5 s, not 100 s of trickle
    finally:
        stop.set()
        server.join(5)
        listener.close()
