"""The SMTP client side of delivery, on asyncio streams: EHLO, STARTTLS, AUTH for a
smarthost, and a transaction's MAIL, RCPTs and DATA sent as one write when the server
offers PIPELINING (RFC 2920), so a message costs one round trip before its body instead
of two plus one per recipient.

aiosmtplib (which this replaces here) reads exactly one reply per command written and
drops what arrives early, so it cannot pipeline; the submission side stays aiosmtpd.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
from dataclasses import dataclass

MAX_REPLY_LINES = 100
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


class SmtpFailure(Exception):
    """The session cannot go on (closed, timed out, or an unreadable reply)."""


class Refused(SmtpFailure):
    """A reply that ends the session's use: to the greeting, EHLO, STARTTLS or AUTH."""

    def __init__(self, code: int, text: str, what: str) -> None:
        super().__init__(f"{what}: {code} {text}")
        self.code, self.text = code, text


@dataclass(frozen=True)
class ServerReply:
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400


def encode_body(message: bytes) -> bytes:
    """The message as DATA sends it: CRLF line ends, leading dots doubled, the final
    CRLF.CRLF (RFC 5321 section 4.5.2)."""
    bare = message.replace(b"\r\n", b"")
    if b"\r" in bare or b"\n" in bare:
        message = _LINE_ENDS.sub(b"\r\n", message)
    if message.startswith(b".") or b"\n." in message:
        message = _LEADING_DOT.sub(b"..", message)
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    return message + b".\r\n"


class SmtpClient:
    def __init__(self, address: str, port: int, helo: str, timeout: float) -> None:
        self.address, self.port, self.helo, self.timeout = address, port, helo, timeout
        self.extensions: dict[str, str] = {}
        # MAIL was sent and no final reply to a body has been read since: the next
        # transaction on this session needs an RSET first (after a completed DATA it does
        # not, RFC 5321 section 4.1.1.4, which saves a round trip per kept message).
        self.in_transaction = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def is_connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    def supports(self, extension: str) -> bool:
        return extension.lower() in self.extensions

    async def connect(self) -> None:
        """Open the session and read the greeting; OSError or SmtpFailure if not."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.address, self.port), self.timeout
            )
        except TimeoutError:
            raise SmtpFailure(f"no connection within {self.timeout:g}s") from None
        greeting = await self.read()
        if greeting.code != 220:
            raise Refused(greeting.code, greeting.text, "greeting")

    async def ehlo(self) -> None:
        reply = await self.command(f"EHLO {self.helo}")
        if reply.code != 250:
            raise Refused(reply.code, reply.text, "EHLO")
        self.extensions = {}
        for line in reply.text.split("\n")[1:]:
            name, _, params = line.partition(" ")
            self.extensions[name.lower()] = params

    async def starttls(self, context: ssl.SSLContext, server_hostname: str | None) -> None:
        reply = await self.command("STARTTLS")
        if reply.code != 220:
            raise Refused(reply.code, reply.text, "STARTTLS")
        assert self._writer is not None
        await asyncio.wait_for(
            self._writer.start_tls(context, server_hostname=server_hostname), self.timeout
        )
        await self.ehlo()  # RFC 3207: what was said before TLS is forgotten

    async def login(self, username: str, password: str) -> None:
        token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
        reply = await self.command(f"AUTH PLAIN {token}")
        if reply.code != 235:
            raise Refused(reply.code, reply.text, "AUTH")

    async def command(self, line: str) -> ServerReply:
        (reply,) = await self.pipeline([line])
        return reply

    async def pipeline(self, lines: list[str]) -> list[ServerReply]:
        """Write every command at once, then read a reply for each, in order. Without
        PIPELINING the caller sends one line at a time."""
        if any("\r" in line or "\n" in line for line in lines):
            raise ValueError("an SMTP command holds a line break")
        await self._write("".join(f"{line}\r\n" for line in lines).encode("ascii"))
        if lines[0].startswith("MAIL FROM:"):
            self.in_transaction = True
        replies = [await self.read() for _ in lines]
        if lines == ["RSET"] and replies[0].code == 250:
            self.in_transaction = False
        return replies

    async def body(self, message: bytes) -> ServerReply:
        """After a 354: the message and the final reply."""
        await self._write(encode_body(message))
        reply = await self.read()
        self.in_transaction = False
        return reply

    async def read(self) -> ServerReply:
        """One reply, however many lines (bounded), within the timeout."""
        assert self._reader is not None
        lines: list[str] = []
        code = 0
        while len(lines) < MAX_REPLY_LINES:
            try:
                raw = await asyncio.wait_for(self._reader.readline(), self.timeout)
            except TimeoutError:
                raise SmtpFailure(f"no reply within {self.timeout:g}s") from None
            except (ValueError, asyncio.LimitOverrunError):
                raise SmtpFailure("a reply line too long") from None
            if not raw.endswith(b"\n"):
                raise SmtpFailure("the server closed the connection")
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            if len(text) < 3 or not text[:3].isdigit() or text[3:4] not in ("", " ", "-"):
                raise SmtpFailure(f"not an SMTP reply: {text[:80]!r}")
            code = int(text[:3])
            lines.append(text[4:].strip())
            if text[3:4] != "-":
                return ServerReply(code, "\n".join(lines))
        raise SmtpFailure(f"a reply of more than {MAX_REPLY_LINES} lines")

    async def _write(self, data: bytes) -> None:
        if self._writer is None or self._writer.is_closing():
            raise SmtpFailure("the connection is closed")
        self._writer.write(data)
        if self._writer.transport.get_write_buffer_size() > 64 * 1024:
            try:  # a big body: wait for room rather than buffer it all
                await asyncio.wait_for(self._writer.drain(), self.timeout)
            except TimeoutError:
                raise SmtpFailure(f"could not send within {self.timeout:g}s") from None

    async def quit(self) -> None:
        """QUIT politely, then close whatever happens (each step bounded)."""
        writer = self._writer
        try:
            if self.is_connected:
                await asyncio.wait_for(self.command("QUIT"), 5)
        except (SmtpFailure, OSError, TimeoutError):
            pass
        self.close()
        if writer is not None:
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 5)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
