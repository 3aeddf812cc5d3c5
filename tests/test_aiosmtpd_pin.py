"""relay/smtp.py overrides private members of aiosmtpd's SMTP class: this fails when an
aiosmtpd release changes them, before the relay misbehaves."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

from aiosmtpd.smtp import SMTP

from relay.smtp import AIOSMTPD_VERSION, RelaySMTP


def test_the_pinned_aiosmtpd_is_installed() -> None:
    assert version("aiosmtpd") == AIOSMTPD_VERSION


def test_getaddr_takes_the_argument_and_returns_address_and_rest() -> None:
    assert list(inspect.signature(SMTP._getaddr).parameters) == ["self", "arg"]
    assert "_getaddr" in inspect.getsource(SMTP.smtp_MAIL)
    assert "_getaddr" in inspect.getsource(SMTP.smtp_RCPT)


def test_handler_coroutine_is_the_session_task_created_in_connection_made() -> None:
    assert "self._handler_coroutine = self.loop.create_task(" in inspect.getsource(
        SMTP.connection_made
    )


def test_starttls_starts_a_new_session_so_the_proxy_data_is_carried_over() -> None:
    source = inspect.getsource(SMTP.connection_made)
    assert "self.session = self._create_session()" in source  # what RelaySMTP works around
    assert "previous.proxy_data" in inspect.getsource(RelaySMTP.connection_made)


def test_every_transaction_end_passes_through_set_post_data_state() -> None:
    assert "self._set_post_data_state()" in inspect.getsource(SMTP._set_rset_state)
    assert "self._set_rset_state()" in inspect.getsource(SMTP.smtp_RSET)
    assert "self._set_post_data_state()" in inspect.getsource(SMTP.smtp_DATA)
    assert "self.envelope = self._create_envelope()" in inspect.getsource(SMTP._set_post_data_state)


def test_the_override_parses_what_aiosmtpd_parses() -> None:
    async def parse() -> list[tuple[str | None, str | None]]:
        smtp = RelaySMTP(object(), mode="starttls", sessions=set(), log=None)  # type: ignore[arg-type]
        plain = SMTP(object())
        args = ["<a@b.example>", "<a@b.example> SIZE=10", "<>", '<"q x"@b.example>']
        mine = [smtp._getaddr(a) for a in args]
        assert mine == [plain._getaddr(a) for a in args]
        return mine

    parsed = asyncio.run(parse())
    assert parsed[0] == ("a@b.example", "")
    assert parsed[1] == ("a@b.example", "SIZE=10")


def test_relay_smtp_data_gives_the_replies_aiosmtpd_gives() -> None:
    """RelaySMTP.smtp_DATA replaces aiosmtpd's: same checks, same replies, same hook."""
    theirs, ours = inspect.getsource(SMTP.smtp_DATA), inspect.getsource(RelaySMTP.smtp_DATA)
    for text in (
        "354 End data with <CR><LF>.<CR><LF>",
        "503 Error: need RCPT command",
        "501 Syntax: DATA",
        "500 Line too long (see RFC5321 4.5.3.1.6)",
        "552 Error: Too much mail data",
        "self._call_handler_hook('DATA')",
        "self._set_post_data_state()",
    ):
        assert text in theirs, text
        assert text.replace("'", '"') in ours, text
    assert SMTP.line_length_limit == 1001


def test_a_non_ascii_argument_gets_the_reply_relay_smtp_rewrites() -> None:
    from relay.smtp import _STRICT_ASCII

    assert f"await self.push('{_STRICT_ASCII}')" in inspect.getsource(SMTP._handle_client)
