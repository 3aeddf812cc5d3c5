"""Smaller input checks (issue #11, item 9): NUL bytes in header fields, a non-ASCII
address in From:, non-ASCII in MAIL/RCPT. Each gets a permanent, documented reply (the
client must not retry forever) and nothing reaches the queue."""

from __future__ import annotations

import pytest

from relay import replies as R
from tests.relayproc import RelayProcess, message


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory):
    relay = RelayProcess(tmp_path_factory.mktemp("input") / "relay").start()
    yield relay
    relay.stop()


@pytest.mark.parametrize(
    "extra",
    ["X-Evil\0Name: a\r\n", "X-Evil: a\0b\r\n", "Subject: fine\r\n\0X-Injected: 1\r\n"],
)
def test_nul_in_a_header_field_is_refused(relay: RelayProcess, extra: str) -> None:
    client = relay.smtp()
    client.mail("noreply@example.com")
    client.rcpt("a@example.org")
    code, text = client.data(message(extra=extra))
    assert (code, text.decode()) == (550, R.S550_NUL_IN_HEADER.split(" ", 1)[1])
    client.quit()


def test_a_nul_in_the_body_is_left_to_the_receiver(relay: RelayProcess) -> None:
    client = relay.smtp()
    assert client.sendmail("noreply@example.com", ["a@example.org"], message(body="a\0b\r\n")) == {}
    client.quit()


def test_a_non_ascii_from_address_is_a_permanent_refusal(relay: RelayProcess) -> None:
    client = relay.smtp()
    client.mail("noreply@example.com")
    client.rcpt("a@example.org")
    raw = message().replace(
        b"From: Example <noreply@example.com>", "From: <nöreply@example.com>".encode()
    )
    code, text = client.data(raw)
    assert code == 550 and text.startswith(b"5.6.0"), text
    client.quit()
    assert not [line for line in relay.lines if "UnicodeEncodeError" in line]


@pytest.mark.parametrize("command", ["MAIL FROM:<nö@example.com>", "RCPT TO:<ü@example.org>"])
def test_non_ascii_in_mail_or_rcpt_is_553(relay: RelayProcess, command: str) -> None:
    client = relay.smtp()
    if command.startswith("RCPT"):
        client.mail("noreply@example.com")
    client.send(command.encode() + b"\r\n")
    code, text = client.getreply()
    assert (code, text.decode()) == (553, R.S553_NOT_ASCII.split(" ", 1)[1])
    client.quit()
