"""Bounce messages and complaints (issue #12): mail from a domain with a return path goes
out with a VERP envelope sender per recipient; the relay's MX listener takes bounce
messages and ARF complaints for those addresses only and feeds the suppression list by
OCI's rule (one hard bounce, four soft-bounced messages, a complaint)."""

from __future__ import annotations

import json
import smtplib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay import replies as R
from relay.store.sqlite import EmbeddedStore
from relay.verp import parse_token
from tests.bouncemail import arf, dsn
from tests.conftest import require_tool
from tests.knot import free_port
from tests.postfixproc import POSTFIX, Postfix, can_run
from tests.relayproc import RelayProcess, message
from tests.test_delivery import Clock, run, start_world, submit, worker_for

RP = frozenset({"rp.example.com"})


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield from mx_world(tmp_path)


def mx_world(tmp_path: Path, zones: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    """test_delivery's world, with the relay's MX listener on a port of its own."""
    mx, metrics = free_port(), free_port()
    args = ("--listen", f"127.0.0.1:{mx}/mx", "--metrics", f"127.0.0.1:{metrics}")
    for world in start_world(tmp_path, *args, zones=zones):
        relay: RelayProcess = world["relay"]
        relay.wait_for(lambda r=relay: len(r.events("listening")) >= 3, what="the mx listener")
        yield {**world, "mx": mx, "metrics": metrics}


def scraped(world: dict, prefix: str) -> list[str]:
    """The relay's metric lines that start with `prefix`."""
    url = f"http://127.0.0.1:{world['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    return [line for line in text.splitlines() if line.startswith(prefix)]


def delivered_senders(world: dict, *rcpts: str) -> dict[str, str]:
    """Submit one message to `rcpts`, deliver it; the envelope sender each one got."""
    submit(world["relay"], *rcpts)
    assert run(worker_for(world, Clock())) == 1
    got = world["dests"]["mx1"].recorder.messages
    return {m.rcpt_tos[0]: m.mail_from for m in got if len(m.rcpt_tos) == 1}


def to_mx(world: dict, rcpt: str, data: bytes, sender: str = "") -> tuple[int, bytes]:
    client = smtplib.SMTP("127.0.0.1", world["mx"], local_hostname="mx.example.org", timeout=20)
    try:
        client.ehlo()
        assert not client.has_extn("auth")  # nothing to log in to here
        assert client.has_extn("starttls")
        client.mail(sender)
        code, text = client.rcpt(rcpt)
        if code != 250:
            return code, text
        return client.data(data)
    finally:
        client.quit()


def suppressed(world: dict, address: str) -> str | None:
    store = EmbeddedStore(world["relay"].folder / "state" / "relay")
    try:
        return store.suppressions.reason(address)
    finally:
        store.close()


def test_each_recipient_gets_its_own_verp_return_path(world) -> None:
    senders = delivered_senders(world, "a@example.org", "b@example.org")
    assert set(senders) == {"a@example.org", "b@example.org"}
    tokens = [parse_token(s, RP) for s in senders.values()]
    assert all(tokens) and tokens[0] != tokens[1]
    assert all(s.startswith("bounces+") and len(s.split("@")[0]) <= 64 for s in senders.values())


def test_a_hard_bounce_suppresses_and_the_next_message_is_refused(world) -> None:
    return_path = delivered_senders(world, "gone@example.org")["gone@example.org"]
    code, text = to_mx(world, return_path, dsn(return_path, "gone@example.org"))
    assert (code, text.decode()) == (250, R.S250_BOUNCE_TAKEN.split(" ", 1)[1])
    assert suppressed(world, "gone@example.org") == "HARDBOUNCE"
    assert scraped(world, "postform_bounces_total") == [
        'postform_bounces_total{bounce="hard",sender_domain="example.com",source="report"} 1.0'
    ]
    (event,) = world["relay"].events_seen("bounce_received")
    assert event["bounce"] == "hard" and event["status"] == "5.1.1" and event["added"]
    client = world["relay"].smtp()
    client.mail("noreply@example.com")
    assert client.rcpt("gone@example.org")[0] == 550
    client.quit()


def test_four_soft_bounced_messages_suppress_and_a_repeat_counts_once(world) -> None:
    for n in range(4):
        path = delivered_senders(world, "full@example.org")["full@example.org"]
        world["dests"]["mx1"].recorder.messages.clear()
        for _ in range(2 if n == 0 else 1):  # a second notice about one message: no count
            report = dsn(path, "full@example.org", status="4.2.2", action="delayed")
            assert to_mx(world, path, report)[0] == 250
        assert suppressed(world, "full@example.org") == (None if n < 3 else "SOFTBOUNCE")
    counts = [e["soft_count"] for e in world["relay"].events_seen("bounce_received", 4)]
    assert counts == [1, 2, 3, 4]
    assert scraped(world, "postform_bounces_total") == [
        'postform_bounces_total{bounce="soft",sender_domain="example.com",source="report"} 4.0'
    ]  # five notices, four messages


def test_a_complaint_suppresses_as_complaint(world) -> None:
    path = delivered_senders(world, "angry@example.org")["angry@example.org"]
    assert to_mx(world, path, arf(path, "angry@example.org"))[0] == 250
    assert suppressed(world, "angry@example.org") == "COMPLAINT"
    complaints = scraped(world, "postform_complaints_total")
    assert complaints == ['postform_complaints_total{sender_domain="example.com"} 1.0']
    (event,) = world["relay"].events_seen("complaint")
    assert event["feedback_type"] == "abuse" and event["recipient"] == "angry@example.org"


def test_forged_foreign_and_ordinary_mail_is_refused(world) -> None:
    path = delivered_senders(world, "real@example.org")["real@example.org"]
    local, domain = path.split("@")
    forged = local[:-4] + ("aaaa" if not local.endswith("aaaa") else "bbbb") + "@" + domain
    assert to_mx(world, forged, dsn(forged, "real@example.org"))[0] == 550  # bad MAC
    # a valid address, but a report about someone else: the MAC binds the recipient
    assert to_mx(world, path, dsn(path, "victim@example.org"))[0] == 550
    other = path.replace("@rp.example.com", "@other.example")
    assert to_mx(world, other, dsn(other, "real@example.org"))[0] == 550  # not a return path
    code, text = to_mx(world, "postmaster@rp.example.com", message(), sender="x@evil.test")
    assert (code, text.decode()) == (550, R.S550_NOT_A_BOUNCE_ADDRESS.split(" ", 1)[1])
    code, _ = to_mx(world, "someone@example.org", message(), sender="x@evil.test")
    assert code == 550  # never a relay
    assert suppressed(world, "real@example.org") is None
    assert suppressed(world, "victim@example.org") is None


def test_a_report_that_cannot_be_read_is_kept_and_counted(world) -> None:
    path = delivered_senders(world, "x@example.org")["x@example.org"]
    assert to_mx(world, path, message(subject="out of office"))[0] == 250
    (event,) = world["relay"].events_seen("bounce_unreadable")
    kept = world["relay"].folder / "state" / "relay" / "bounces" / "unreadable" / event["file"]
    assert b"out of office" in kept.read_bytes()
    assert kept.stat().st_mode & 0o777 == 0o600


def test_a_real_postfix_bounce_suppresses_the_recipient(world, tmp_path: Path) -> None:
    """Postfix accepts the message for remote.test, finds no such user, and sends a real
    DSN to the VERP return path through the relay's MX listener."""
    require_tool(POSTFIX)
    if not can_run():
        pytest.skip("Postfix's master needs root")
    world["knot"].update(
        "example.org",
        add=[
            ("remote.example.org", "MX", "10 postfix.example.org."),
            ("postfix.example.org", "A", "127.0.0.1"),
        ],
    )
    postfix = Postfix("remote.example.org", free_port(), world["mx"]).start()
    try:
        relay = world["relay"]
        submit(relay, "ghost@remote.example.org")
        worker = worker_for(world, Clock())
        worker.router.port = postfix.port
        assert run(worker) == 1
        (delivered,) = [e for e in relay_events(relay) if e["event"] == "delivered"]
        assert delivered["reply"].startswith("250")  # Postfix took it ...
        postfix.wait_log("status=bounced")  # ... then bounced it
        relay.wait_for(lambda: relay.events("bounce_received"), timeout=30, what="the DSN")
        (event,) = relay.events_seen("bounce_received")
        assert event["bounce"] == "hard" and event["status"].startswith("5.1.1")
        assert event["format"] == "dsn"
        assert suppressed(world, "ghost@remote.example.org") == "HARDBOUNCE"
        assert "status=sent" in postfix.wait_log("relay=127.0.0.1")  # the DSN reached us
    finally:
        postfix.stop()


def relay_events(relay: RelayProcess) -> list[dict]:
    path = relay.folder / "state" / "relay" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]
