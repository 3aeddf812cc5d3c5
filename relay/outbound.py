"""One SMTP transaction to one destination, reporting a reply per recipient.

STARTTLS is opportunistic by default (used when offered; a failed handshake falls back to
a plain connection), `required` for a smarthost that must encrypt, or `none`.
Certificates are not verified for opportunistic TLS, as RFC 7435 describes.

With a SessionCache (sessions.py), a session that ended its transaction well is kept
(after an RSET when the transaction stopped before a body) for the next message to the
same address, as Postfix's connection
cache does; a kept session found closed at MAIL is replaced by a new one (nothing was
sent on it yet).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from relay.sessions import SessionCache, SessionKey
from relay.smtpclient import ServerReply, SmtpClient, SmtpFailure


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    stage: str = "rcpt"  # dns | mail | rcpt | data | address | local

    @property
    def recipient_specific(self) -> bool:
        """A permanent failure about the address itself (unknown user, bad domain): the
        kind that may suppress it. A 5xx at MAIL or DATA, or a policy 5.7.x, may not."""
        if self.stage == "dns":
            return True
        if self.stage != "rcpt" or not self.permanent:
            return False
        enhanced = self.text.split(" ", 1)[0]
        if enhanced[:2] == "5." and enhanced.count(".") == 2:
            return enhanced.startswith(("5.1.", "5.2.1"))
        return self.code in (550, 551, 553)

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
    password: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    verify_host: str | None = None  # verify the certificate for this name (smarthost)
    cache: SessionCache | None = None
    body: str | None = None  # BODY=8BITMIME as the client declared it

    async def send(self, address: str, port: int) -> dict[str, Reply]:
        """Per-recipient replies; ConnectFailed when no usable session was had (try the next
        address or defer). Bounded by a total deadline of a few command timeouts."""
        bad = [r for r in self.recipients if not _encodable(r)]
        if bad:
            return {
                r: Reply(553, "5.1.3 address cannot be sent as ASCII", "address")
                for r in self.recipients
            }
        try:
            return await asyncio.wait_for(self._send_any(address, port), self.timeout * 4)
        except TimeoutError:
            raise ConnectFailed(
                f"{address}:{port}: no complete answer within {self.timeout * 4:g}s"
            ) from None

    async def _send_any(self, address: str, port: int) -> dict[str, Reply]:
        try:
            return await self._send(address, port, use_tls=self.tls != "none")
        except _TlsFailed as exc:
            if self.tls == "required":
                raise ConnectFailed(
                    f"{address}:{port}: STARTTLS required but failed: {exc}"
                ) from None
            return await self._send(address, port, use_tls=False)

    async def _send(self, address: str, port: int, use_tls: bool) -> dict[str, Reply]:
        key = (address, port, use_tls, self.tls, self.username or "", self.verify_host or "")
        kept = self.cache.take(key) if self.cache is not None else None
        if kept is not None:
            client, uses = kept
            try:
                replies = await self._transaction(client, kept=True)
            except _Stale:
                client.close()  # closed while it waited: a new session below
            except (SmtpFailure, OSError) as exc:
                client.close()
                raise ConnectFailed(f"{address}:{port}: {type(exc).__name__}: {exc}") from None
            else:
                await self._release(key, client, uses + 1, replies)
                return replies
        client = SmtpClient(address, port, self.helo, self.timeout)
        try:
            await client.connect()
        except (SmtpFailure, OSError) as exc:
            client.close()
            raise ConnectFailed(f"{address}:{port}: {exc}") from None
        if self.cache is not None:
            self.cache.opened += 1
        try:
            await self._prepare(client, address, use_tls)
            replies = await self._transaction(client)
        except (_TlsFailed, ConnectFailed):
            await client.quit()
            raise
        except (SmtpFailure, OSError) as exc:
            await client.quit()
            # timeouts, disconnects, EHLO or AUTH refusals: no usable session here
            raise ConnectFailed(f"{address}:{port}: {type(exc).__name__}: {exc}") from None
        await self._release(key, client, 1, replies)
        return replies

    async def _release(
        self, key: SessionKey, client: SmtpClient, uses: int, replies: dict[str, Reply]
    ) -> None:
        """Keep a session that ended well for the next message (after RSET when its
        transaction did not end with a body), else QUIT."""
        healthy = all(r.code != 421 for r in replies.values())
        if self.cache is not None and healthy and self.cache.wants(key, uses):
            try:
                if client.in_transaction:
                    await client.command("RSET")
            except (SmtpFailure, OSError):
                client.close()
                return
            if not client.in_transaction:
                self.cache.give(key, client, uses)
                return
        await client.quit()

    async def _prepare(self, client: SmtpClient, address: str, use_tls: bool) -> None:
        await client.ehlo()
        encrypted = False
        if use_tls and client.supports("starttls"):
            context = ssl.create_default_context() if self.verify_host else _insecure()
            try:
                await client.starttls(context, self.verify_host)
            except (SmtpFailure, OSError) as exc:  # ssl.SSLError is an OSError
                raise _TlsFailed(str(exc)) from None
            encrypted = True
        elif self.tls == "required":
            raise ConnectFailed(f"{address}: STARTTLS required but not offered")
        if self.username:
            if not encrypted:
                raise ConnectFailed(
                    f"{address}: refusing to send the smarthost password without TLS"
                )
            await client.login(self.username, self.password or "")

    async def _transaction(self, client: SmtpClient, kept: bool = False) -> dict[str, Reply]:
        """MAIL, the RCPTs and DATA: in one write when the server offers PIPELINING."""
        mail = f"MAIL FROM:<{self.sender}>"
        if self.body == "8BITMIME" and client.supports("8bitmime"):
            mail += " BODY=8BITMIME"  # RFC 6152: declared, and the next hop takes it
        commands = [mail, *(f"RCPT TO:<{r}>" for r in self.recipients), "DATA"]
        try:
            if client.supports("pipelining"):
                answers = await client.pipeline(commands)
            else:
                answers = await _one_by_one(client, commands)
        except (SmtpFailure, OSError) as exc:
            if kept:  # nothing was accepted on a kept session the server had closed
                raise _Stale(str(exc)) from None
            raise
        mail_reply, *rcpt_replies, data_reply = answers + [None] * (len(commands) - len(answers))
        assert mail_reply is not None
        if kept and mail_reply.code == 421:
            raise _Stale(mail_reply.text)
        replies: dict[str, Reply] = {}
        accepted = []
        for rcpt, answer in zip(self.recipients, rcpt_replies, strict=True):
            if mail_reply.code != 250:
                replies[rcpt] = Reply(mail_reply.code, mail_reply.text, "mail")
            elif answer is not None:
                replies[rcpt] = Reply(answer.code, answer.text, "rcpt")
                if answer.ok:
                    accepted.append(rcpt)
        if data_reply is not None and data_reply.code == 354 and not accepted:
            await client.body(b"")  # RFC 2920: a server that said 354 anyway gets an empty one
        if not accepted:
            return replies
        if data_reply is None or data_reply.code != 354:
            code, text = (data_reply.code, data_reply.text) if data_reply else (451, "no DATA")
            final = Reply(code, text, "data")
        else:
            answer = await client.body(self.message)
            final = Reply(answer.code, answer.text, "data")
        for rcpt in accepted:
            replies[rcpt] = final
        return replies


async def _one_by_one(client: SmtpClient, commands: list[str]) -> list[ServerReply]:
    """Without PIPELINING: each command waits for its reply; after a refused MAIL, or
    when no recipient was accepted, the rest is not sent."""
    answers = [await client.command(commands[0])]
    if answers[0].code != 250:
        return answers
    for command in commands[1:-1]:
        answers.append(await client.command(command))
    if any(a.ok for a in answers[1:]):
        answers.append(await client.command(commands[-1]))
    return answers


class _TlsFailed(Exception):
    pass


class _Stale(Exception):
    """A kept session that the server closed while it waited."""


def _encodable(address: str) -> bool:
    return address.isascii() and address.isprintable() and " " not in address
