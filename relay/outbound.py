"""One SMTP transaction to one destination, reporting a reply per recipient.

STARTTLS is opportunistic by default (used when offered; a failed handshake falls back to
a plain connection), `required` for a smarthost that must encrypt, or `none`.
Certificates are not verified for opportunistic TLS, as RFC 7435 describes.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiosmtplib


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class ConnectFailed(Exception):
    """No SMTP session with this address: try the next one, or defer."""


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class Transaction:
    helo: str
    sender: str
    recipients: list[str]
    message: bytes
    tls: str = "opportunistic"  # required | opportunistic | none
    username: str | None = None
    password: str | None = None
    timeout: float = 60.0

    async def send(self, address: str, port: int) -> dict[str, Reply]:
        try:
            return await self._send(address, port, use_tls=self.tls != "none")
        except _TlsFailed:
            if self.tls == "required":
                raise ConnectFailed(f"{address}:{port}: STARTTLS required but failed") from None
            return await self._send(address, port, use_tls=False)

    async def _send(self, address: str, port: int, use_tls: bool) -> dict[str, Reply]:
        client = aiosmtplib.SMTP(
            hostname=address,
            port=port,
            local_hostname=self.helo,
            start_tls=False,
            timeout=self.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ConnectFailed(f"{address}:{port}: {exc}") from None
        try:
            await self._prepare(client, address, use_tls)
            return await self._transaction(client)
        except aiosmtplib.SMTPServerDisconnected as exc:
            raise ConnectFailed(f"{address}:{port}: disconnected: {exc}") from None
        finally:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def _prepare(self, client: aiosmtplib.SMTP, address: str, use_tls: bool) -> None:
        await client.ehlo()
        if use_tls and client.supports_extension("starttls"):
            try:
                await client.starttls(tls_context=_insecure())
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                raise _TlsFailed(str(exc)) from None
        elif self.tls == "required":
            raise ConnectFailed(f"{address}: STARTTLS required but not offered")
        if self.username:
            await client.login(self.username, self.password or "")

    async def _transaction(self, client: aiosmtplib.SMTP) -> dict[str, Reply]:
        try:
            await client.mail(self.sender)
        except aiosmtplib.SMTPResponseException as exc:
            reply = Reply(exc.code, exc.message)
            return {r: reply for r in self.recipients}
        replies: dict[str, Reply] = {}
        accepted = []
        for rcpt in self.recipients:
            try:
                response = await client.rcpt(rcpt)
                accepted.append(rcpt)
                replies[rcpt] = Reply(response.code, response.message)
            except aiosmtplib.SMTPResponseException as exc:
                replies[rcpt] = Reply(exc.code, exc.message)
        if not accepted:
            return replies
        try:
            response = await client.data(self.message)
            final = Reply(response.code, response.message)
        except aiosmtplib.SMTPResponseException as exc:
            final = Reply(exc.code, exc.message)
        for rcpt in accepted:
            replies[rcpt] = final
        return replies


class _TlsFailed(Exception):
    pass
