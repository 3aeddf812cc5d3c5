"""Event log flooding (issue #11, attack 5): 179,000 refused MAILs in 10 s rotated all six
event files away, with every auth failure in them. Now repetitive events (connections,
refusals) pass a bucket per event and address and one for all, what is held back is
counted in `events_suppressed` lines, and security events are always written."""

from __future__ import annotations

import contextlib
import json
import smtplib
import time
from pathlib import Path

from relay.eventflood import ALL_BURST, PER_PEER_BURST, FloodGuard
from tests.relayproc import RelayProcess, default_config, with_sessions

CONFIG = with_sessions(
    default_config(),
    max_errors=1_000_000,
    slow_after_errors=1_000_000,
)
FLOOD = 30_000


def test_a_flood_of_refusals_cannot_push_auth_failures_out_of_the_log(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        guesser = relay.smtp(login=None)
        with contextlib.suppress(smtplib.SMTPAuthenticationError):
            guesser.login(relay.creds["app"]["username"], "not-the-password")
        guesser.close()
        flood = relay.smtp()
        started = time.monotonic()
        for start in range(0, FLOOD, 1000):  # pipelined, in bounded batches
            flood.send(b"MAIL FROM:<x@evil.test>\r\nRSET\r\n" * 1000)
            replies = [flood.getreply()[0] for _ in range(2000)]
            assert replies.count(550) == 1000, start
        elapsed = time.monotonic() - started
        flood.quit()
        log = relay.spool().parents[1] / "events.jsonl"
        relay.wait_for(  # the file, not stderr: a line reaches stderr first
            lambda: '"events_suppressed"' in log.read_text(), what="summary", timeout=20
        )
        events = [json.loads(line) for line in log.read_text().splitlines()]
        kinds = [e["event"] for e in events]
        assert "auth_fail" in kinds  # written before the flood, still there
        written = kinds.count("rejected")
        assert written <= PER_PEER_BURST + 5 * (elapsed + 12), (written, elapsed)
        held = sum(
            e["counts"].get("rejected", 0) for e in events if e["event"] == "events_suppressed"
        )
        assert written + held == FLOOD  # every refusal is accounted for
        summary = next(e for e in events if e["event"] == "events_suppressed")
        assert "127.0.0.1" in summary["top_peers"]
        assert log.stat().st_size < 200_000  # was ~6 MB per 30,000 refusals
    finally:
        relay.stop()


def test_the_flood_guard_keeps_every_address_a_share_and_security_events_always() -> None:
    now = [1000.0]
    guard = FloodGuard(clock=lambda: now[0])
    flooder = [guard.allow("rejected", {"peer": "192.0.2.1"}) for _ in range(500)]
    assert flooder.count(True) == PER_PEER_BURST
    assert guard.allow("rejected", {"peer": "192.0.2.2"})  # another address still gets in
    assert all(guard.allow("auth_fail", {"peer": "192.0.2.1"}) for _ in range(1000))
    spread = [guard.allow("connect", {"peer": f"10.0.{i // 250}.{i % 250}"}) for i in range(1000)]
    assert spread.count(True) == ALL_BURST - PER_PEER_BURST - 1  # the shared budget
    assert guard.summary() is None  # not yet due
    now[0] += 10
    summary = guard.summary()
    assert summary is not None and summary["counts"]["rejected"] == 500 - PER_PEER_BURST
    assert summary["top_peers"]["192.0.2.1"] == 500 - PER_PEER_BURST
    assert guard.summary(force=True) is None  # nothing held since
