"""Delivery: real relay submissions, real DNS (Knot) with MX records pointing at real
SMTP servers on loopback, and the delivery worker run with a fake clock."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import ssl
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest

from reconciler.dns.records import records_for
from relay.delivery import DeliveryWorker
from relay.events import EventLog
from relay.metrics import Metrics
from relay.store.sqlite import EmbeddedStore
from tests.conftest import require_tool
from tests.destinations import Destination, collect_stopped_servers
from tests.knot import KNOTD, Knot, free_port
from tests.relayproc import RelayProcess, message, queue_id_of
from tests.states import read_policy, read_state

MX_RECORDS = [
    ("example.org", "MX", "10 mx1.example.org."),
    ("example.org", "MX", "20 mx2.example.org."),
    ("mx1.example.org", "A", "127.0.0.10"),
    ("mx2.example.org", "A", "127.0.0.11"),
    ("nullmx.example.org", "MX", "0 ."),
    ("implicit.example.org", "A", "127.0.0.12"),
]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


DESTINATIONS = (("mx1", "127.0.0.10"), ("mx2", "127.0.0.11"), ("implicit", "127.0.0.12"))


def start_world(
    tmp_path: Path, *relay_args: str, zones: tuple[str, ...] = ()
) -> Iterator[dict[str, Any]]:
    """Knot serving example.org's MX (and the other `zones`, empty), destinations on
    127.0.0.10-12, a relay to submit to (started with `relay_args`)."""
    require_tool(KNOTD)
    knot = Knot(tmp_path / "knot", ["example.org", *zones]).start()
    knot.update("example.org", add=MX_RECORDS)
    port = free_port()
    dests = {name: Destination(ip, port).start() for name, ip in DESTINATIONS}
    relay = RelayProcess(tmp_path / "relay").start(*relay_args)
    yield {"knot": knot, "dests": dests, "relay": relay, "port": port}
    relay.stop()
    for dest in dests.values():
        dest.stop()
    knot.stop()
    collect_stopped_servers()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield from start_world(tmp_path)


def worker_for(world: dict, clock: Clock, metrics: Metrics | None = None) -> DeliveryWorker:
    relay: RelayProcess = world["relay"]
    data = relay.folder / "state" / "relay"
    policy = read_policy(relay.folder / "state" / "state.json")
    return DeliveryWorker(
        data / "spool" / "queue",
        lambda: policy,
        EmbeddedStore(data, clock=clock).suppressions,
        EventLog(path=data / "events.jsonl"),
        metrics,
        nameserver=world["knot"].server,
        port=world["port"],
        clock=clock,
        rng=random.Random(7),
        rescan=0.0,  # the relay process spools; this worker learns of it from the folder
    )


def submit(
    relay: RelayProcess, *rcpts: str, subject: str = "Hello", sender: str = "noreply@example.com"
) -> str:
    client = relay.smtp()
    client.mail(sender)
    for rcpt in rcpts:
        assert client.rcpt(rcpt)[0] == 250
    code, reply = client.data(message(sender, subject=subject))
    client.quit()
    assert code == 250
    return queue_id_of(reply)


def events(world: dict, name: str) -> list[dict]:
    path = world["relay"].folder / "state" / "relay" / "events.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if r["event"] == name]


def run(worker: DeliveryWorker) -> int:
    return asyncio.run(worker.run_once())


def test_delivers_to_the_lowest_preference_mx_signed_and_leaves_the_spool(world) -> None:
    relay, dests = world["relay"], world["dests"]
    queue_id = submit(relay, "reader@example.org")
    metrics = Metrics()
    assert run(worker_for(world, Clock(), metrics)) == 1
    (got,) = dests["mx1"].recorder.messages
    assert got.rcpt_tos == ["reader@example.org"] and not dests["mx2"].recorder.messages
    state = read_state(relay.folder / "state" / "state.json")
    txt = {r.name: r.value for r in records_for(state.resources.values(), 300)}
    signed = got.data.split(b"\r\n", 3)[3]  # past our Received header
    assert dkim.verify(
        signed, dnsfunc=lambda n, timeout=5: txt.get(n.decode().rstrip("."), "").encode()
    )
    assert not list(relay.spool().glob(f"{queue_id}.*"))
    (event,) = events(world, "delivered")
    assert event["host"] == "mx1.example.org" and event["reply"].startswith("250")
    value = metrics.registry.get_sample_value(
        "postform_recipients_total", {"sender_domain": "example.com", "outcome": "delivered"}
    )
    assert value == 1.0
    assert metrics.registry.get_sample_value("postform_delivery_latency_seconds_count") == 1.0


def test_falls_back_to_the_next_mx_and_to_the_domain_itself(world) -> None:
    dests = world["dests"]
    dests["mx1"].stop()
    submit(world["relay"], "reader@example.org", "someone@implicit.example.org")
    run(worker_for(world, Clock()))
    assert dests["mx2"].recorder.copies_for("reader@example.org") == 1
    assert dests["implicit"].recorder.copies_for("someone@implicit.example.org") == 1


def test_null_mx_and_5xx_are_hard_bounces_that_suppress_at_once(world) -> None:
    relay, dests = world["relay"], world["dests"]
    dests["mx1"].recorder.hard.add("gone@example.org")
    submit(relay, "x@nullmx.example.org", "gone@example.org", "fine@example.org")
    run(worker_for(world, Clock()))
    bounced = {e["recipient"]: e for e in events(world, "bounced")}
    assert bounced["x@nullmx.example.org"]["bounce"] == "hard"
    assert "null MX" in bounced["x@nullmx.example.org"]["reply"]
    assert bounced["gone@example.org"]["reply"].startswith("550 5.1.1")
    assert dests["mx1"].recorder.copies_for("fine@example.org") == 1
    client = relay.smtp()  # the running relay now refuses them at RCPT
    client.mail("noreply@example.com")
    code, text = client.rcpt("gone@example.org")
    assert (code, text) == (
        550,
        b"5.1.1 Recipient <gone@example.org> is on the suppression list (HARDBOUNCE)",
    )
    assert client.rcpt("fine@example.org")[0] == 250
    client.quit()
    listed = relay.postform("suppressions", "list", "--json")
    assert {r["address"]: r["reason"] for r in json.loads(listed.stdout)} == {
        "gone@example.org": "HARDBOUNCE",
        "x@nullmx.example.org": "HARDBOUNCE",
    }


def test_retries_follow_the_backoff_with_a_fake_clock(world) -> None:
    world["dests"]["mx1"].recorder.soft.add("busy@example.org")
    clock = Clock()
    start = clock.now
    worker = worker_for(world, clock)
    submit(world["relay"], "busy@example.org")
    assert run(worker) == 1
    first = events(world, "deferred")[-1]
    delay = first["next_attempt"] - start
    assert 60 * 0.8 <= delay <= 60 * 1.2  # retry_base 60 s, +-20 % jitter
    clock.now = start + delay - 1
    assert run(worker) == 0  # not due yet: no attempt
    clock.now = first["next_attempt"] + 0.01
    assert run(worker) == 1
    second = events(world, "deferred")[-1]
    assert 120 * 0.8 <= second["next_attempt"] - clock.now <= 120 * 1.2
    assert second["attempts"] == 2


def test_four_soft_bounces_suppress_and_a_success_resets_the_count(world) -> None:
    """For mail without a return path (no bounce messages come back, so a 250 is all the
    relay will learn); with one, see tests/test_bounces.py."""
    dest = world["dests"]["mx1"].recorder
    clock = Clock()
    worker = worker_for(world, clock)
    store = worker.suppressions

    def soft_bounce_once(address: str) -> None:
        submit(world["relay"], address, sender="alerts@rsa.example")
        run(worker)  # first attempt: deferred
        clock.now += 3 * 86_400 + 1  # past max_age (3 days)
        run(worker)  # deferred at max age: a soft bounce

    dest.soft.add("flaky@example.org")
    for _ in range(3):
        soft_bounce_once("flaky@example.org")
    assert store.soft_count("flaky@example.org") == 3
    dest.soft.discard("flaky@example.org")
    submit(world["relay"], "flaky@example.org", sender="alerts@rsa.example")
    run(worker)
    assert dest.copies_for("flaky@example.org") == 1 and store.soft_count("flaky@example.org") == 0
    dest.soft.add("flaky@example.org")
    soft_bounce_once("flaky@example.org")
    assert store.reason("flaky@example.org") is None  # one after the reset, not four
    dest.soft.add("busy@example.org")
    for _ in range(4):
        soft_bounce_once("busy@example.org")
    assert store.reason("busy@example.org") == "SOFTBOUNCE"
    soft = [e for e in events(world, "bounced") if e["bounce"] == "soft"]
    assert len(soft) == 8


def test_a_restart_mid_delivery_delivers_each_recipient_exactly_once(world) -> None:
    dests = world["dests"]
    dests["implicit"].stop()
    clock = Clock()
    submit(world["relay"], "reader@example.org", "later@implicit.example.org")
    run(worker_for(world, clock))  # reader delivered; later deferred (connection refused)
    assert dests["mx1"].recorder.copies_for("reader@example.org") == 1
    deferred = events(world, "deferred")[-1]
    assert "No reachable server" in deferred["reply"]
    restarted = Destination("127.0.0.12", world["port"]).start()
    try:
        clock.now += 3600
        run(worker_for(world, clock))  # a new worker: as after a restart
        assert restarted.recorder.copies_for("later@implicit.example.org") == 1
        assert dests["mx1"].recorder.copies_for("reader@example.org") == 1
        assert not list(world["relay"].spool().glob("*"))
    finally:
        restarted.stop()


def test_smarthost_takes_everything(world) -> None:
    _smarthost(world, "127.0.0.11", "none")
    submit(world["relay"], "a@example.org", "b@elsewhere.example")
    run(worker_for(world, Clock()))
    got = world["dests"]["mx2"].recorder
    assert got.copies_for("a@example.org") == 1 and got.copies_for("b@elsewhere.example") == 1


def test_relay_serve_delivers_with_metrics_status_and_events(world, tmp_path: Path) -> None:
    relay: RelayProcess = world["relay"]
    relay.stop()
    metrics_port = free_port()
    relay.start(
        "--nameserver",
        world["knot"].server,
        "--outbound-port",
        str(world["port"]),
        "--metrics",
        f"127.0.0.1:{metrics_port}",
        deliver=True,
    )
    submit(relay, "reader@example.org")
    relay.wait_for(lambda: relay.events("delivered"), timeout=15, what="delivery")
    assert world["dests"]["mx1"].recorder.copies_for("reader@example.org") == 1
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert 'postform_recipients_total{outcome="delivered",sender_domain="example.com"} 1.0' in text
    assert 'postform_messages_total{outcome="accepted",sender_domain="example.com"} 1.0' in text
    status = json.loads(relay.postform("relay", "status", "--json").stdout)
    assert status["queue_messages"] == 0
    shown = relay.postform("relay", "events", "--since", "1h").stdout
    assert '"event":"accepted"' in shown and '"event":"delivered"' in shown
    relay.signal(signal.SIGTERM)
    assert relay.stop() == 0
    relay.start()  # the world fixture stops it again


def _smarthost(world: dict, host: str, tls: str) -> None:
    """Point the relay's applied policy at a smarthost on loopback."""
    relay: RelayProcess = world["relay"]
    config = relay.folder / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "  ipv4: [192.0.2.10]\n",
            f"  ipv4: [192.0.2.10]\n  smarthost: {{host: {host}, port: {world['port']}, "
            f"tls: {tls}}}\n",
        )
    )
    relay.apply()


def test_starttls_is_used_when_offered_and_required_tls_defers_without_it(world) -> None:
    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.13").configure_cert(context)
    secure = Destination("127.0.0.13", world["port"], tls=context).start()
    try:
        _smarthost(world, "127.0.0.13", "required")
        submit(world["relay"], "a@example.org")
        run(worker_for(world, Clock()))
        (got,) = secure.recorder.messages
        assert got.tls is True
    finally:
        secure.stop()
    config = world["relay"].folder / "postform.yaml"
    config.write_text(config.read_text().replace("host: 127.0.0.13", "host: 127.0.0.10"))
    world["relay"].apply()
    submit(world["relay"], "b@example.org")
    run(worker_for(world, Clock()))
    assert world["dests"]["mx1"].recorder.copies_for("b@example.org") == 0
    assert "STARTTLS required but not offered" in events(world, "deferred")[-1]["reply"]


def test_sessions_are_kept_for_the_next_message_to_the_same_server(world) -> None:
    """Postfix's connection cache: eight messages to one destination in one pass go over
    at most per_destination (4) sessions, each reset between messages, none left open."""
    relay, dest = world["relay"], world["dests"]["mx1"].recorder
    for i in range(8):
        submit(relay, f"r{i}@example.org", sender="alerts@rsa.example")  # no VERP here
    worker = worker_for(world, Clock())
    assert run(worker) == 8
    assert len(dest.messages) == 8
    assert 1 <= dest.sessions <= 4, dest.sessions
    assert worker.sessions.opened == dest.sessions and worker.sessions.reused == 8 - dest.sessions
    assert not worker.sessions._kept  # a one-shot pass leaves nothing open


def test_a_kept_session_the_server_closed_is_replaced_without_losing_the_message(world) -> None:
    relay, dests = world["relay"], world["dests"]
    worker = worker_for(world, Clock())

    async def one_pass() -> None:
        await worker.run_once(wait=False)
        await asyncio.gather(*list(worker._tasks))

    async def scenario() -> None:
        submit(relay, "first@example.org", sender="alerts@rsa.example")
        await one_pass()
        assert worker.sessions.opened == 1 and worker.sessions._kept  # kept for the next
        dests["mx1"].stop()  # the server goes away and comes back: the kept session is dead
        dests["mx1"] = Destination("127.0.0.10", world["port"]).start()
        submit(relay, "second@example.org", sender="alerts@rsa.example")
        await one_pass()
        await worker.sessions.sweep(everything=True)

    asyncio.run(scenario())
    assert dests["mx1"].recorder.copies_for("second@example.org") == 1
    assert worker.sessions.opened == 2  # the dead one was replaced, once
    assert not events(world, "deferred")


def test_an_8bit_body_declared_by_the_client_goes_on_with_body_8bitmime(world) -> None:
    relay, dest = world["relay"], world["dests"]["mx1"].recorder
    client = relay.smtp()
    client.mail("alerts@rsa.example", ["BODY=8BITMIME"])
    client.rcpt("eight@example.org")
    body = "Grüße, café.\r\n"
    assert client.data(message("alerts@rsa.example", body=body))[0] == 250
    client.quit()
    submit(relay, "seven@example.org", sender="alerts@rsa.example")
    assert run(worker_for(world, Clock())) == 2
    options = {m.rcpt_tos[0]: m.mail_options for m in dest.messages}
    assert options == {"eight@example.org": ["BODY=8BITMIME"], "seven@example.org": []}
    eight = next(m for m in dest.messages if m.rcpt_tos == ["eight@example.org"])
    assert body.encode() in eight.data  # the 8-bit bytes, unchanged


def test_a_destination_that_says_slow_down_is_left_alone_for_a_while(world) -> None:
    relay, dest = world["relay"], world["dests"]["mx1"].recorder
    clock = Clock()
    worker = worker_for(world, clock)
    dest.slow_down.add("a@example.org")
    submit(relay, "a@example.org", sender="alerts@rsa.example")
    assert run(worker) == 1
    (paused,) = events(world, "destination_paused")
    assert paused["destination"] == "example.org" and paused["seconds"] == 30
    dest.slow_down.clear()
    submit(relay, "b@example.org", sender="alerts@rsa.example")
    opened = dest.sessions
    assert run(worker) == 1
    assert dest.sessions == opened  # no session to a destination that asked for a pause
    deferred = [e for e in events(world, "deferred") if e["recipient"] == "b@example.org"]
    assert "asked to slow down" in deferred[0]["reply"]
    clock.now += 100  # past the pause and both retries
    assert run(worker) == 2
    assert dest.copies_for("a@example.org") == 1 and dest.copies_for("b@example.org") == 1
