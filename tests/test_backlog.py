"""Backpressure (issue #12): past relay.delivery.backlog_slow queued messages each 250 to
DATA waits (0 s at the mark, 1 s at twice it), and at backlog_max new mail gets
451 4.3.2 until delivery catches up. The relay runs without delivery here, so the queue
only grows."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

from relay import replies as R
from tests.relayproc import RelayProcess, default_config, message

CONFIG = default_config().replace(
    "  ipv4: [192.0.2.10]\n",
    "  ipv4: [192.0.2.10]\n  delivery: {backlog_slow: 2, backlog_max: 5}\n",
)


def timed_send(client: smtplib.SMTP, n: int) -> tuple[int, float]:
    started = time.monotonic()
    client.mail("noreply@example.com")
    client.rcpt(f"r{n}@example.org")
    code, _ = client.data(message())
    return code, time.monotonic() - started


def test_acceptance_slows_then_stops_as_the_queue_grows(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        client = relay.smtp()
        fast = [timed_send(client, n) for n in range(3)]
        assert all(code == 250 and took < 0.4 for code, took in fast), fast
        time.sleep(1.1)  # the relay looks at the queue at most once a second
        slowed = [timed_send(client, n) for n in range(3, 5)]
        assert all(code == 250 and took >= 0.45 for code, took in slowed), slowed  # 3 > 2
        time.sleep(1.1)
        client.mail("noreply@example.com")
        client.rcpt("full@example.org")
        code, text = client.data(message())
        assert (code, text.decode()) == (
            451,
            R.S451_QUEUE_FULL.format(queued=5).split(" ", 1)[1],
        )
        client.quit()
        (event,) = relay.events_seen("queue_full")
        assert event["queued"] == 5
        assert len(list(relay.spool().glob("*.msg"))) == 5  # nothing was lost or added
    finally:
        relay.stop()
