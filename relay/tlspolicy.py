"""The outbound TLS a destination gets: its `relay.delivery.destinations` override when
the YAML sets one, else its MTA-STS policy in enforce mode (only the listed MX hosts,
verified TLS), else opportunistic STARTTLS (RFC 7435)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relay.contract.settings import DeliverySettings
from relay.events import EventLog
from relay.mtasts import MtaSts, PolicyFetchFailed, StsPolicy


@dataclass(frozen=True)
class TlsRule:
    mode: str = "opportunistic"  # verify | required | opportunistic | none
    source: str = "default"  # what set it: default | destinations | MTA-STS policy
    policy: StsPolicy | None = None  # an enforced MTA-STS policy: its MX list

    def allows(self, host: str) -> bool:
        return self.policy is None or self.policy.allows(host)

    def transaction_tls(self, host: str) -> tuple[str, str | None]:
        """(Transaction.tls, the name to verify the certificate for) toward `host`."""
        if self.mode == "verify":
            return "required", host
        return self.mode, None


OPPORTUNISTIC = TlsRule()


class TlsPolicies:
    def __init__(self, sts: MtaSts, log: EventLog, clock: Callable[[], float]) -> None:
        self.sts = sts
        self.log = log
        self.clock = clock
        self._announced: dict[str, str] = {}  # domain -> policy id announced in the log

    async def rule(self, dest: str, settings: DeliverySettings) -> TlsRule:
        override = settings.rule(dest).tls
        if override is not None:
            return TlsRule(override, "destinations")
        if not settings.mta_sts:
            return OPPORTUNISTIC
        try:
            policy = await self.sts.policy(dest)
        except PolicyFetchFailed as exc:
            # A policy announced but not fetchable, none cached: RFC 8461 section 5.1 says
            # deliver as without one (the next attempt tries the fetch again).
            self.log.emit("mta_sts_error", destination=dest, error=str(exc))
            return OPPORTUNISTIC
        if policy is None or policy.mode == "none":
            return OPPORTUNISTIC
        if self._announced.get(dest) != policy.policy_id:
            self._announced[dest] = policy.policy_id
            self.log.emit(
                "mta_sts_policy", destination=dest, mode=policy.mode, id=policy.policy_id,
                mx=list(policy.mx), max_age=policy.max_age,
            )  # fmt: skip
        if policy.mode == "testing":
            return OPPORTUNISTIC  # testing: deliver as before (reports are not sent)
        return TlsRule("verify", "MTA-STS policy", policy)
