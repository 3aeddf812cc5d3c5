"""Unbounded metric labels (issue #11, attack 6): rejected MAILs with 100,000 distinct
sender domains made 200,043 metric lines. Labels now come only from the applied policy
(declared domains, domains of approved senders and return paths); anything else is
`other`."""

from __future__ import annotations

from pathlib import Path

from tests.knot import free_port
from tests.relayproc import RelayProcess, default_config, message, with_sessions
from tests.test_relay_workers import scrape

CONFIG = with_sessions(
    default_config(),
    max_errors=100000,
    slow_after_errors=100000,
)
DOMAINS = 2000


def test_made_up_sender_domains_are_counted_as_other(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG)
    metrics = free_port()
    relay.start("--metrics", f"127.0.0.1:{metrics}")
    try:
        client = relay.smtp()
        for i in range(DOMAINS):  # pipelined by hand: MAIL and RSET, one reply each
            client.send(f"MAIL FROM:<x@d{i}.evil.test>\r\nRSET\r\n".encode())
        replies = [client.getreply()[0] for _ in range(2 * DOMAINS)]
        assert replies.count(550) == DOMAINS
        assert client.sendmail("noreply@example.com", ["a@example.org"], message()) == {}
        client.quit()
        text = scrape(metrics)
        lines = [line for line in text.splitlines() if line.startswith("postform_messages_")]
        assert 'postform_messages_total{outcome="rejected",sender_domain="other"} 2000.0' in text
        assert 'postform_messages_total{outcome="accepted",sender_domain="example.com"} 1.0' in (
            text
        )
        assert not any("evil.test" in line for line in lines)
        assert len(lines) <= 4, lines  # total and created, for two label sets
    finally:
        relay.stop()
