"""SMTP AUTH PLAIN as the relay answers it: the login throttle first (blocked, or too
many checks in flight), then the password check off the event loop, then the count."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from relay import replies as R
from relay.admission import Admission
from relay.auth import decode_plain, logged_username
from relay.contract.policy import RelayPolicy
from relay.events import EventLog
from relay.smtp import peer_of


class PlainLogin:
    def __init__(
        self, policy: Callable[[], RelayPolicy], admission: Admission, log: EventLog
    ) -> None:
        self.policy = policy
        self.admission = admission
        self.log = log

    async def plain(self, server: SMTP, args: list[str]) -> AuthResult:
        peer = peer_of(server.session)
        throttle = self.admission.throttle
        raw = await self._plain_response(server, args)
        if raw is None:
            return AuthResult(success=False, handled=True)
        decoded = decode_plain(raw)
        username = decoded[0] if decoded else ""
        if await throttle.blocked(peer, username):
            return await self._refuse(server, peer, username)
        if not await throttle.begin(peer, username):  # parallel guesses may not outrun it
            if await throttle.blocked(peer, username):
                return await self._refuse(server, peer, username)
            self.log.emit("auth_busy", peer=peer, username=self._named(username))
            return AuthResult(success=False, handled=False, message=R.S454_AUTH_BUSY)
        cred = None
        try:
            if decoded is not None:
                cred = await self.admission.passwords.check(self.policy(), *decoded)
        finally:
            throttle.end(peer, username)
        if cred is None:
            count = await throttle.fail(peer, username)
            self.log.emit("auth_fail", peer=peer, username=self._named(username), failures=count)
            if await throttle.blocked(peer, username):
                return await self._refuse(server, peer, username)
            await asyncio.sleep(throttle.pause_for(count))
            return AuthResult(success=False, handled=False, message=R.S535_BAD_CREDENTIALS)
        await throttle.succeed(peer, username)
        self.log.emit("auth_ok", peer=peer, username=cred.username, user=cred.user)
        return AuthResult(success=True, auth_data=cred)

    async def _plain_response(self, server: SMTP, args: list[str]) -> bytes | None:
        if len(args) > 1:
            try:
                return base64.b64decode(args[1], validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return None
        blob = await server.challenge_auth("", encode_to_b64=False)
        return None if blob is MISSING else bytes(blob)

    def _named(self, username: str) -> str | None:
        return logged_username(self.policy(), username)

    async def _refuse(self, server: SMTP, peer: str, username: str) -> AuthResult:
        self.log.emit("auth_blocked", peer=peer, username=self._named(username))
        reply = R.S421_TOO_MANY_AUTH_FAILURES.format(username=username or "?", peer=peer)
        await server.push(reply)
        if server.transport is not None:
            server.transport.close()
        return AuthResult(success=False, handled=True)
