"""Rate-limit starvation (issue #11, attack 4): one application's flood of refused MAILs
drained the relay-wide messages_per_minute, and the other application got 451. Now only
accepted messages count (a MAIL reserves one, given back unless DATA ends in 250), and
each user may take at most limits.user_share percent of the rate when there are several."""

from __future__ import annotations

import smtplib
from pathlib import Path

from relay import replies as R
from tests.relayproc import RELAY_CONFIG, RelayProcess, default_config, message, with_sessions

PER_MINUTE = 40  # user_share 50 %: 20 a minute for each user

CONFIG = with_sessions(
    RELAY_CONFIG.format(per_minute=PER_MINUTE, per_day=50000, max_bytes=2097152),
    max_errors=1000,
    slow_after_errors=1000,
)


def send(client: smtplib.SMTP, sender: str, n: int) -> list[int]:
    codes = []
    for i in range(n):
        code, _ = client.mail(sender)
        if code == 250:
            assert client.rcpt(f"r{i}@example.org")[0] == 250
            code, _ = client.data(message(sender))
        else:
            client.rset()
        codes.append(code)
    return codes


def test_refused_and_abandoned_mail_take_nothing_and_one_user_takes_its_share(
    tmp_path: Path,
) -> None:
    relay = RelayProcess(tmp_path / "relay", config=CONFIG).start()
    try:
        flood = relay.smtp(login="app")
        for _ in range(300):  # refused senders, then approved ones abandoned by RSET
            assert flood.mail("evil@evil.test")[0] == 550
            flood.rset()
        for _ in range(300):
            assert flood.mail("noreply@example.com")[0] == 250
            assert flood.rcpt("x@example.org")[0] == 250
            flood.rset()
        refused_data = []
        for _ in range(50):  # a DATA the relay refuses (From not approved) gives it back
            flood.mail("noreply@example.com")
            flood.rcpt("x@example.org")
            refused_data.append(flood.data(message("evil@evil.test"))[0])
        assert set(refused_data) == {550}
        # The flooder sends for real: it gets its share, 20 of the 40, and no more.
        codes = send(flood, "noreply@example.com", 30)
        assert codes.count(250) == 20 and codes[20:] == [451] * 10
        code, text = flood.mail("noreply@example.com")
        assert (code, text.decode()) == (
            451,
            R.S451_USER_RATE_LIMITED.format(user="app", limit=20).split(" ", 1)[1],
        )
        flood.rset()
        other = relay.smtp(login="billing")  # the other application is served
        assert send(other, "billing@example.com", 20) == [250] * 20
        assert other.mail("billing@example.com")[0] == 451  # its own share is spent now
        other.quit()
        flood.quit()
    finally:
        relay.stop()


def test_recipients_per_message_are_capped(tmp_path: Path) -> None:
    config = default_config().replace(
        "  max_message_bytes", "  max_recipients: 5\n  max_message_bytes"
    )
    relay = RelayProcess(tmp_path / "relay", config=config).start()
    try:
        client = relay.smtp()
        client.mail("noreply@example.com")
        codes = [client.rcpt(f"r{i}@example.org")[0] for i in range(8)]
        assert codes == [250] * 5 + [452] * 3
        code, text = client.rcpt("late@example.org")
        assert text.decode() == R.S452_TOO_MANY_RECIPIENTS.format(limit=5).split(" ", 1)[1]
        assert client.data(message())[0] == 250  # the five are sent
        client.quit()
    finally:
        relay.stop()
