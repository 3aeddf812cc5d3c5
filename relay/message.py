"""Message hygiene before spooling: line endings, the From: header, added headers.

Works on the raw bytes aiosmtpd hands over (CRLF lines, dot-unstuffed).
"""

from __future__ import annotations

import email.utils
import re
import secrets
import time
from datetime import UTC, datetime

from relay.headers import CRLF

_last_date: list[tuple[int, str]] = [(-1, "")]


def _date(ts: float) -> str:
    """RFC 5322 date in UTC, e.g. 'Fri, 27 Nov 2026 18:34:59 +0000'; formatted once per
    second (format_datetime costs about 5 % of the relay's CPU otherwise)."""
    second = int(ts)
    cached = _last_date[0]
    if cached[0] != second:
        cached = (second, email.utils.format_datetime(datetime.fromtimestamp(second, UTC)))
        _last_date[0] = cached
    return cached[1]


def bare_line_ending(data: bytes) -> str | None:
    """'LF' or 'CR' when `data` holds a line ending other than CRLF (SMTP smuggling)."""
    pairs = data.count(CRLF)
    if data.count(b"\n") != pairs:
        return "LF"
    if data.count(b"\r") != pairs:
        return "CR"
    return None


_SIMPLE_FROM = re.compile(r'(?:[^<>",;:@]*<)?([^<>\s",;:@]+@[^<>\s",;:@]+)>?')


def from_addresses(fields: list[tuple[str, str]]) -> tuple[int, list[str]]:
    """(number of From: fields, the addresses they hold)."""
    values = [v for n, v in fields if n == "from"]
    if len(values) == 1:
        match = _SIMPLE_FROM.fullmatch(values[0].strip())
        if match is not None:  # 'a@b' or 'Name <a@b>': skip the full RFC 5322 parser
            return 1, [match.group(1)]
    return len(values), [a for _, a in email.utils.getaddresses(values) if a]


def added_headers(fields: list[tuple[str, str]], hostname: str, now: float) -> bytes:
    """Date and Message-ID when the message lacks them (RFC 5322 3.6)."""
    names = {n for n, _ in fields}
    out = b""
    if "date" not in names:
        out += b"Date: " + _date(now).encode() + CRLF
    if "message-id" not in names:
        token = f"{int(now * 1000):x}.{secrets.token_hex(8)}"
        out += f"Message-ID: <{token}@{hostname}>".encode() + CRLF
    return out


def message_id(fields: list[tuple[str, str]], added: bytes) -> str:
    """The message's Message-ID (its own, or the one added_headers gave it), for the
    `accepted` event that `postform relay trace <ID>` finds it by."""
    own = [v.strip() for n, v in fields if n == "message-id"]
    if own:
        return own[0][:250]
    for line in added.split(CRLF):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode(errors="replace")
    return ""


_HELO_UNSAFE = re.compile(r"[^A-Za-z0-9.:\[\]_-]")


def safe_helo(name: str) -> str:
    """The client's HELO name as it may appear in a header: letters, digits and . : [ ] _ -
    only, at most 255 (a CR or LF here would let a client inject header fields)."""
    return _HELO_UNSAFE.sub("?", name)[:255] or "unknown"


def received_header(
    *, hostname: str, helo: str, peer: str, tls: str | None, queue_id: str, user: str, now: float
) -> bytes:
    protocol = "ESMTPSA" if tls else "ESMTPA"
    tls_note = f" ({tls})" if tls else ""
    date = _date(now or time.time())
    return (
        f"Received: from {safe_helo(helo)} ([{peer}])\r\n\tby {hostname} (postform) with {protocol}"
        f"{tls_note} id {queue_id}\r\n\tfor authenticated user {user}; {date}\r\n"
    ).encode()
