"""Where one transaction goes and how: to the smarthost, or to the destination's MX
hosts in preference order, each over the TLS its policy asks for (opportunistic by
default; `relay.delivery.destinations` or the domain's MTA-STS policy can ask more).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from relay.contract.policy import RelayPolicy
from relay.contract.settings import DeliverySettings
from relay.mx import LookupFailed, MxResolver, Undeliverable
from relay.outbound import ConnectFailed, Reply, Transaction
from relay.sessions import SessionCache
from relay.spool import SpooledMessage
from relay.tlspolicy import TlsPolicies, TlsRule

Replies = dict[str, Reply]


class Router:
    def __init__(
        self,
        policy: Callable[[], RelayPolicy],
        mx: MxResolver,
        sessions: SessionCache,
        tls: TlsPolicies,
        port: int = 25,
    ) -> None:
        self.policy = policy
        self.mx = mx
        self.sessions = sessions
        self.tls = tls
        self.port = port  # where destinations listen: 25, or a test's sinks on loopback

    async def send(
        self,
        sender: str,
        spooled: SpooledMessage,
        dest: str,
        rcpts: list[str],
        settings: DeliverySettings,
    ) -> tuple[Replies, str]:
        """Per-recipient replies and the host that gave them (the domain when none did)."""
        policy = self.policy()
        transaction = Transaction(
            policy.relay.hostname,
            sender,
            rcpts,
            spooled.message,
            timeout=settings.timeout,
            cache=self.sessions,
            body=spooled.envelope.get("body"),
        )
        smarthost = policy.relay.smarthost
        if smarthost:
            transaction.tls = smarthost.tls
            transaction.username = smarthost.username
            env = smarthost.password_env
            transaction.password = os.environ.get(env, "") if env else None
            if transaction.tls == "required" and transaction.username:
                transaction.verify_host = smarthost.host  # a password only to the real host
            return await _first_answer(
                transaction, [(smarthost.host, [smarthost.host], smarthost.port)], dest, None
            )
        try:
            destinations = await self.mx.destinations(dest)
        except Undeliverable as exc:
            return all_of(rcpts, Reply(550, f"5.1.2 {exc}", "dns")), dest
        except LookupFailed as exc:
            return all_of(rcpts, Reply(451, f"4.4.3 {exc}", "dns")), dest
        rule = await self.tls.rule(dest, settings)
        hosts = [d for d in destinations if rule.allows(d.host)]
        if not hosts:
            listed = ", ".join(d.host for d in destinations)
            why = f"4.7.5 no MX host of {dest} ({listed}) is allowed by its {rule.source}"
            return all_of(rcpts, Reply(451, why, "local")), dest
        targets = [(d.host, list(d.addresses), self.port) for d in hosts]
        return await _first_answer(transaction, targets, dest, rule)


async def _first_answer(
    transaction: Transaction,
    targets: list[tuple[str, list[str], int]],
    dest: str,
    rule: TlsRule | None,
) -> tuple[Replies, str]:
    errors = []
    for host, addresses, port in targets:
        if rule is not None:
            transaction.tls, transaction.verify_host = rule.transaction_tls(host)
        for address in addresses:
            try:
                return await transaction.send(address, port), host
            except ConnectFailed as exc:
                errors.append(str(exc))
    why = errors[-1] if errors else "no address for any MX host"
    reply = Reply(451, f"4.4.1 No reachable server for {dest}: {why}", "local")
    return all_of(transaction.recipients, reply), dest


def all_of(rcpts: list[str], reply: Reply) -> Replies:
    return {r: reply for r in rcpts}
