"""Admission: what the SMTP handler asks before it accepts anything.

Who may log in (password checks and the login throttle), how fast a relay may
accept (the rate), how many recipients a day (the daily count), and whom it may
send to (suppressions: declared in the policy, or learned at runtime).
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.auth import PasswordChecker
from relay.contract.policy import RelayPolicy
from relay.contract.suppression import suppression_key
from relay.store.interfaces import LimitGate, LoginThrottle, SuppressionList


@dataclass
class Admission:
    passwords: PasswordChecker
    throttle: LoginThrottle
    limits: LimitGate
    suppressions: SuppressionList

    def suppression_reason(self, policy: RelayPolicy, address: str) -> str | None:
        """Why `address` may not receive mail, or None: declared first, then learned."""
        declared = policy.suppressions.get(suppression_key(address))
        return str(declared) if declared is not None else self.suppressions.reason(address)
