"""Errors per session (issue #11, attack 3): one session sent 268,800 rejected MAIL
commands in 20 s. Now, as Postfix's smtpd_soft/hard_error_limit: past
slow_after_errors each error reply waits 1 s, at max_errors the session is closed
with 421; an accepted message starts the count again, and a refused suppressed
recipient is not counted."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest

from tests.relayproc import RelayProcess, default_config, message, with_sessions

CONFIG = with_sessions(
    default_config(),
    slow_after_errors=2,
    max_errors=5,
)


@pytest.fixture
def relay(tmp_path: Path):
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    yield relay
    relay.stop()


def rejected_mails(client: smtplib.SMTP, limit: int = 100) -> list[int]:
    codes = []
    for _ in range(limit):
        try:
            code, _ = client.mail("evil@evil.test")
        except smtplib.SMTPServerDisconnected:
            break
        codes.append(code)
        if code == 421:
            break
        client.rset()
    return codes


def test_a_session_of_errors_is_slowed_then_closed(relay: RelayProcess) -> None:
    client = relay.smtp()
    started = time.monotonic()
    codes = rejected_mails(client)
    elapsed = time.monotonic() - started
    assert codes == [550] * 5 or codes == [550] * 5 + [421]
    assert 2.0 <= elapsed < 5  # errors 3 and 4 waited a second each
    (event,) = relay.events_seen("too_many_errors")
    assert event["errors"] == 5 and event["peer"] == "127.0.0.1"
    client.close()


def test_accepted_mail_starts_again_and_suppressed_recipients_do_not_count(
    relay: RelayProcess,
) -> None:
    client = relay.smtp()
    for _ in range(3):
        for _ in range(4):  # four errors: slowed, not closed ...
            assert client.mail("evil@evil.test")[0] == 550
        # ... and a good message, with a suppressed recipient refused on the way
        assert client.mail("noreply@example.com")[0] == 250
        for _ in range(6):
            assert client.rcpt("blocked@example.org")[0] == 550
        assert client.rcpt("reader@example.org")[0] == 250
        assert client.data(message())[0] == 250
    client.quit()
    assert not relay.events("too_many_errors")
