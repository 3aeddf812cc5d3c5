"""The relay's policy as aiosmtpd handler hooks that return reply constants.

The handler holds no state of its own: it reads the policy in force, asks
Admission (may this login, this message, this recipient pass?) and hands what
passed to the Acceptor. One handler serves every session.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any, cast

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from relay import message as msg
from relay import nullsender
from relay import replies as R
from relay.acceptor import Acceptor, Submission
from relay.admission import Admission
from relay.contract.addresses import PLAIN_ADDRESS, normalize
from relay.contract.policy import Credential, RelayPolicy
from relay.events import EventLog
from relay.headers import field_values, split
from relay.login import PlainLogin
from relay.metrics import Metrics, count_message, label_of
from relay.smtp import RelaySMTP, peer_of, socket_peer
from relay.store.interfaces import Verdict


def _reserve(envelope: Envelope, day: str) -> None:
    reserved = _reserved(envelope)
    reserved[day] = reserved.get(day, 0) + 1
    envelope.postform_reserved = reserved  # type: ignore[attr-defined]


def _reserved(envelope: Envelope, clear: bool = False) -> dict[str, int]:
    """Recipients of this transaction counted against the daily limit (and not yet
    final), per UTC day (a transaction may straddle midnight)."""
    reserved: dict[str, int] = getattr(envelope, "postform_reserved", None) or {}
    if clear:
        envelope.postform_reserved = {}  # type: ignore[attr-defined]
    return reserved


def _limited(policy: RelayPolicy, verdict: Verdict, user: str) -> str:
    if verdict is Verdict.USER_LIMITED:
        return R.S451_USER_RATE_LIMITED.format(user=user, limit=policy.user_limit)
    if verdict is Verdict.LIMITED:
        return R.S451_RATE_LIMITED.format(limit=policy.limits.messages_per_minute)
    return R.S451_CANNOT_ACCOUNT


def _body(options: list[str]) -> str | None:
    """MAIL's BODY= parameter (RFC 6152), when the client gave one."""
    for option in options:
        name, _, value = option.partition("=")
        if name.upper() == "BODY" and value.upper() in ("7BIT", "8BITMIME"):
            return value.upper()
    return None


def _credential(session: Session) -> Credential:
    """The credential the session logged in with (MAIL, RCPT and DATA come after AUTH:
    the server requires it)."""
    return cast(Credential, session.auth_data)


def _trusted(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


class RelayHandler:
    def __init__(
        self,
        policy: Callable[[], RelayPolicy],
        admission: Admission,
        acceptor: Acceptor,
        log: EventLog,
        metrics: Metrics | None = None,
    ) -> None:
        self.policy = policy
        self.admission = admission
        self.acceptor = acceptor
        self.log = log
        self.metrics = metrics
        self.login = PlainLogin(policy, admission, log)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self.login.plain(server, args)

    def _sender_reply(
        self, policy: RelayPolicy, user: str, address: str, header: bool
    ) -> str | None:
        """None when `user` may send as `address`, else the 550 reply."""
        served = policy.return_paths.get(address.rpartition("@")[2])
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
        known = self.policy().label_domains
        self.log.emit(
            "rejected", peer=peer_of(session), stage=stage, reply=reply,
            sender_domain=label_of(known, sender) if sender else "", **fields,
        )  # fmt: skip
        count_message(self.metrics, known, sender, "rejected")
        return reply

    async def handle_PROXY(
        self, server: SMTP, session: Session, envelope: Envelope, proxy_data: Any
    ) -> bool:
        """A +proxy listener's PROXY header: taken only from a trusted load balancer."""
        via = socket_peer(session)
        if not _trusted(via, self.policy().relay.proxy_from):
            self.log.emit("proxy_refused", peer=via)
            await server.push(R.S421_NOT_A_TRUSTED_PROXY.format(peer=via))
            return False
        peer = peer_of(session)
        if isinstance(server, RelaySMTP) and not server.admit(peer):
            return False  # refused with 421 by the connection caps
        self.log.emit("connect", peer=peer, via=via, listener="starttls+proxy")
        return True

    async def handle_exception(self, error: Exception) -> str:
        """An unexpected failure in a hook: a temporary failure, never a traceback reply."""
        self.log.emit("error", error=f"{type(error).__name__}: {error}")
        return R.S451_LOCAL_ERROR

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        cred = _credential(session)
        policy = self.policy()
        current = policy.credentials.get(cred.username)
        if current is None or current.password_hash != cred.password_hash:
            session.authenticated = False  # removed or rotated by a later apply
            return self._reject(session, "MAIL", R.S530_CREDENTIAL_REVOKED, address, user=cred.user)
        reply = (
            None  # a bounce: its recipients are checked at RCPT (nullsender.py)
            if nullsender.is_null(address)
            else self._sender_reply(policy, cred.user, normalize(address), header=False)
        )
        if reply is not None:
            return self._reject(session, "MAIL", reply, address, user=cred.user)
        # Only a MAIL that passed its checks takes from the rate, from the user's share
        # and the tenancy's, and it is given back unless the message is accepted
        # (abandon): a flood of refused or abandoned ones cannot starve the others.
        verdict = await self.admission.limits.take_message(cred.user, policy.user_limit)
        if verdict is not Verdict.ADMIT:
            return self._reject(session, "MAIL", _limited(policy, verdict, cred.user), address)
        envelope.postform_message = cred.user  # type: ignore[attr-defined]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return R.S250_SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        sender = envelope.mail_from or ""
        if not PLAIN_ADDRESS.fullmatch(address):
            reply = R.S553_BAD_ADDRESS.format(address=address.encode("ascii", "replace").decode())
            return self._reject(session, "RCPT", reply, sender)
        policy = self.policy()
        if len(envelope.rcpt_tos) >= policy.limits.max_recipients:
            reply = R.S452_TOO_MANY_RECIPIENTS.format(limit=policy.limits.max_recipients)
            return self._reject(session, "RCPT", reply, sender)
        target = normalize(address)
        if nullsender.is_null(envelope.mail_from):
            user = _credential(session).user
            refusal = nullsender.recipient_reply(policy, user, envelope, address)
            if refusal is not None:
                return self._reject(session, "RCPT", refusal, sender, recipient=target)
        reason = self.admission.suppression_reason(policy, target)
        if reason is not None:
            reply = R.S550_SUPPRESSED.format(address=address, reason=reason)
            return self._reject(session, "RCPT", reply, sender, recipient=target)
        limit = policy.limits.recipients_per_day
        verdict = await self.admission.limits.reserve_recipient(limit)
        if verdict is not Verdict.ADMIT:
            reply = (
                R.S452_DAILY_LIMIT.format(limit=limit)
                if verdict is Verdict.LIMITED
                else R.S451_CANNOT_ACCOUNT
            )
            return self._reject(session, "RCPT", reply, sender)
        _reserve(envelope, self.admission.limits.day)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return R.S250_RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await self._data(server, session, envelope)
        if reply.startswith("250"):
            _reserved(envelope, clear=True)  # counted for good
            envelope.postform_message = None  # type: ignore[attr-defined]
        else:
            self.abandon(envelope)
        return reply

    def abandon(self, envelope: Envelope) -> None:
        """A transaction that will not end in a 250: give back its reserved message and
        recipients."""
        for day, count in _reserved(envelope, clear=True).items():
            self.admission.limits.release_recipients(count, day)
        user = getattr(envelope, "postform_message", None)
        if user is not None:
            envelope.postform_message = None  # type: ignore[attr-defined]
            self.admission.limits.release_message(user)

    async def _data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data: bytes = envelope.original_content or b""
        cred = _credential(session)
        sender_env = envelope.mail_from or ""
        kind = msg.bare_line_ending(data)
        if kind is not None:
            smuggling = R.S550_BARE_LINE_ENDING.format(kind=kind)
            return self._reject(session, "DATA", smuggling, sender_env)
        policy = self.policy()
        limit = policy.limits.max_message_bytes
        if len(data) > limit:
            return self._reject(session, "DATA", R.S552_TOO_BIG.format(limit=limit), sender_env)
        head = split(data)[0]
        if b"\0" in head:  # a NUL ends a C string: receivers would read two headers apart
            return self._reject(session, "DATA", R.S550_NUL_IN_HEADER, sender_env)
        fields = field_values(head)
        count, addresses = msg.from_addresses(fields)
        if count != 1 or len(addresses) != 1:
            found = f"found {count} From: field(s), {len(addresses)} address(es)"
            return self._reject(session, "DATA", R.S550_FROM_COUNT.format(found=found), sender_env)
        sender = normalize(addresses[0])
        if not sender.isascii():
            return self._reject(session, "DATA", R.S550_FROM_NOT_ASCII, sender_env)
        reply = self._sender_reply(policy, cred.user, sender, header=True)
        reply = nullsender.data_reply(policy, cred.user, envelope, sender, reply)
        if reply is not None:
            return self._reject(session, "DATA", reply, sender_env, user=cred.user)
        ssl_object = server.transport.get_extra_info("ssl_object") if server.transport else None
        submission = Submission(
            mail_from=nullsender.spooled(sender_env),
            rcpt_tos=list(envelope.rcpt_tos),
            data=data,
            fields=fields,
            sender=sender,
            credential=cred,
            peer=peer_of(session),
            helo=session.host_name or "",
            tls=ssl_object.version() if ssl_object is not None else None,
            body=_body(envelope.mail_options),
            dkim_domain=nullsender.signing_domain(policy, cred.user, envelope, sender),
        )
        return await self.acceptor.accept(policy, submission)
