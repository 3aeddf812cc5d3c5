"""The relay's policy, as aiosmtpd handler hooks that return reply constants."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

from relay import message as msg
from relay import replies as R
from relay.policy import Credential, RelayPolicy, normalize
from relay.spool import new_queue_id

if TYPE_CHECKING:
    from relay.server import Relay


# ASCII dot-atom addresses only: what the outbound client can send unchanged (no quoted
# local parts, no control characters, no SMTPUTF8).
PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
)


def _peer(session: Session) -> str:
    return str(session.peer[0]) if isinstance(session.peer, tuple) else str(session.peer)


class RelayHandler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    @property
    def policy(self) -> RelayPolicy:
        return self.relay.policy

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        peer = _peer(server.session)
        tracker = self.relay.failures
        if tracker.blocked(peer):
            return await self._refuse(server, peer)
        raw = await self._plain_response(server, args)
        if raw is None:
            return AuthResult(success=False, handled=True)
        decoded = self.relay.decode_plain(raw)
        cred = None
        if decoded is not None:
            cred = await self.relay.passwords.check(self.policy, *decoded)
        if cred is None:
            count = tracker.fail(peer)
            self.relay.log.emit(
                "auth_fail", peer=peer, username=decoded[0] if decoded else None, failures=count
            )
            if tracker.blocked(peer):
                return await self._refuse(server, peer)
            await asyncio.sleep(tracker.pause_for(count))
            return AuthResult(success=False, handled=False, message=R.S535_BAD_CREDENTIALS)
        tracker.succeed(peer)
        self.relay.log.emit("auth_ok", peer=peer, username=cred.username, user=cred.user)
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

    async def _refuse(self, server: SMTP, peer: str) -> AuthResult:
        self.relay.log.emit("auth_blocked", peer=peer)
        await server.push(R.S421_TOO_MANY_AUTH_FAILURES.format(peer=peer))
        if server.transport is not None:
            server.transport.close()
        return AuthResult(success=False, handled=True)

    def _sender_reply(self, user: str, address: str, header: bool) -> str | None:
        """None when `user` may send as `address`, else the 550 reply."""
        policy = self.policy
        domain = address.rpartition("@")[2]
        served = policy.return_paths.get(domain)
        if address in policy.senders:
            if policy.allowed(user, address):
                return None
        elif served is not None and not header:
            allowed = policy.users.get(user)
            if allowed is None or any(a.endswith("@" + served) for a in allowed):
                return None
        else:
            tpl = R.S550_FROM_NOT_APPROVED if header else R.S550_SENDER_NOT_APPROVED
            return tpl.format(address=address)
        tpl = R.S550_FROM_NOT_ALLOWED if header else R.S550_SENDER_NOT_ALLOWED
        return tpl.format(address=address, user=user)

    def _reject(
        self, session: Session, stage: str, reply: str, sender: str = "", **fields: Any
    ) -> str:
        self.relay.log.emit("rejected", peer=_peer(session), stage=stage, reply=reply, **fields)
        self.relay.count(sender, "rejected")
        return reply

    def _revoked(self, cred: Credential) -> bool:
        """The session's credential was removed or rotated by a later apply."""
        current = self.policy.credentials.get(cred.username)
        return current is None or current.password_hash != cred.password_hash

    async def handle_exception(self, error: Exception) -> str:
        """An unexpected failure in a hook: a temporary failure, never a traceback reply."""
        self.relay.log.emit("error", error=f"{type(error).__name__}: {error}")
        return R.S451_LOCAL_ERROR

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,  # noqa: N802
        address: str,
        mail_options: list[str],
    ) -> str:
        cred: Credential = session.auth_data
        if self._revoked(cred):
            session.authenticated = False
            return self._reject(session, "MAIL", R.S530_CREDENTIAL_REVOKED, address, user=cred.user)
        if not self.relay.bucket.take():
            limit = self.policy.limits.messages_per_minute
            return self._reject(session, "MAIL", R.S451_RATE_LIMITED.format(limit=limit), address)
        reply = self._sender_reply(cred.user, normalize(address), header=False)
        if reply is not None:
            return self._reject(session, "MAIL", reply, address, user=cred.user)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return R.S250_SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,  # noqa: N802
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not PLAIN_ADDRESS.fullmatch(address):
            reply = R.S553_BAD_ADDRESS.format(address=address.encode("ascii", "replace").decode())
            return self._reject(session, "RCPT", reply, envelope.mail_from or "")
        target = normalize(address)
        reason = self.relay.suppression_reason(target)
        if reason is not None:
            reply = R.S550_SUPPRESSED.format(address=address, reason=reason)
            return self._reject(session, "RCPT", reply, envelope.mail_from or "", recipient=target)
        limit = self.policy.limits.recipients_per_day
        if self.relay.daily.would_exceed(len(envelope.rcpt_tos) + 1, limit):
            return self._reject(
                session, "RCPT", R.S452_DAILY_LIMIT.format(limit=limit), envelope.mail_from or ""
            )
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return R.S250_RECIPIENT_OK

    async def handle_DATA(
        self,
        server: SMTP,
        session: Session,  # noqa: N802
        envelope: Envelope,
    ) -> str:
        data: bytes = envelope.original_content or b""
        cred: Credential = session.auth_data
        kind = msg.bare_line_ending(data)
        if kind is not None:
            return self._reject(
                session, "DATA", R.S550_BARE_LINE_ENDING.format(kind=kind), envelope.mail_from or ""
            )
        limit = self.policy.limits.max_message_bytes
        if len(data) > limit:
            return self._reject(
                session, "DATA", R.S552_TOO_BIG.format(limit=limit), envelope.mail_from or ""
            )
        head, _ = msg.split(data)
        fields = msg.header_fields(head)
        count, addresses = msg.from_addresses(fields)
        if count != 1 or len(addresses) != 1:
            found = f"found {count} From: field(s), {len(addresses)} address(es)"
            return self._reject(
                session, "DATA", R.S550_FROM_COUNT.format(found=found), envelope.mail_from or ""
            )
        sender = normalize(addresses[0])
        reply = self._sender_reply(cred.user, sender, header=True)
        if reply is not None:
            return self._reject(session, "DATA", reply, envelope.mail_from or "", user=cred.user)
        return await self._accept(server, session, envelope, data, fields, cred, sender)

    async def _accept(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        data: bytes,
        fields: list[tuple[str, str]],
        cred: Credential,
        sender: str,
    ) -> str:
        now = time.time()
        queue_id = new_queue_id()
        policy = self.policy
        message = msg.added_headers(fields, policy.hostname, now) + data
        domain = sender.rpartition("@")[2]
        key = policy.signing.get(domain)
        if key is not None:
            signer = await self.relay.signer(key)
            message = signer.sign(message, int(now)) + message
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        tls = ssl_object.version() if ssl_object is not None else None
        message = (
            msg.received_header(
                hostname=policy.hostname,
                helo=session.host_name or "",
                peer=_peer(session),
                tls=tls,
                queue_id=queue_id,
                user=cred.user,
                now=now,
            )
            + message
        )
        envelope_record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "user": cred.user,
            "username": cred.username,
            "from": sender,
            "received_at": now,
            "peer": _peer(session),
            "dkim": f"{key.selector}" if key else None,
        }
        try:
            await self.relay.spool.store(queue_id, envelope_record, message)
        except Exception as exc:  # noqa: BLE001 - not stored, so a temporary failure, never 250
            self.relay.log.emit("spool_error", queue_id=queue_id, error=str(exc))
            return R.S451_LOCAL_ERROR
        self.relay.daily.add(len(envelope.rcpt_tos))
        self.relay.count(sender, "accepted")
        self.relay.accepted()
        self.relay.log.emit(
            "accepted",
            queue_id=queue_id,
            peer=_peer(session),
            user=cred.user,
            sender=sender,
            recipients=len(envelope.rcpt_tos),
            size=len(message),
            dkim=f"{domain}/{key.selector}" if key else None,
            **({} if key else {"unsigned": f"no ACTIVE DKIM selector for {domain}"}),
        )
        return R.S250_QUEUED.format(queue_id=queue_id)
