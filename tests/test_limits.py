"""recipients_per_day is exact: a recipient counts when RCPT accepts it, and a transaction
that does not end in a 250 (RSET, a refused DATA, a dropped session) gives it back."""

from __future__ import annotations

from pathlib import Path

from relay import replies as R
from tests.relayproc import RelayProcess, message


def test_reserved_recipients_come_back_when_the_transaction_is_abandoned(tmp_path: Path) -> None:
    relay = RelayProcess(tmp_path / "relay", per_day=3).start()
    try:
        abandoned = relay.smtp()
        abandoned.mail("noreply@example.com")
        assert abandoned.rcpt("a@example.org")[0] == 250
        assert abandoned.rcpt("b@example.org")[0] == 250
        assert abandoned.rcpt("c@example.org")[0] == 250
        other = relay.smtp()
        other.mail("noreply@example.com")
        assert other.rcpt("d@example.org")[0] == 452  # three are held by the first session
        other.rset()
        abandoned.rset()  # ... until it gives them back
        other.mail("noreply@example.com")
        assert other.rcpt("d@example.org")[0] == 250
        dropped = relay.smtp()
        dropped.mail("noreply@example.com")
        assert dropped.rcpt("e@example.org")[0] == 250
        dropped.close()  # cut off mid-transaction, no QUIT
        relay.wait_for(lambda: len(relay.events("disconnect")) >= 1, what="the drop")
        assert other.rcpt("f@example.org")[0] == 250  # the dropped session's e came back
        assert other.rcpt("g@example.org")[0] == 250
        assert other.data(message())[0] == 250  # d, f, g: the day's three, counted for good
        other.mail("noreply@example.com")
        code, text = other.rcpt("h@example.org")
        assert (code, text) == (452, R.S452_DAILY_LIMIT.format(limit=3).split(" ", 1)[1].encode())
        other.quit()
        abandoned.quit()
    finally:
        relay.stop()
