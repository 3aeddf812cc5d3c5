"""Suppression vocabulary shared by both planes (OCI Email Delivery's reasons)."""

from __future__ import annotations

from enum import StrEnum


class SuppressionReason(StrEnum):
    MANUAL = "MANUAL"
    COMPLAINT = "COMPLAINT"
    UNSUBSCRIBE = "UNSUBSCRIBE"
    HARDBOUNCE = "HARDBOUNCE"
    SOFTBOUNCE = "SOFTBOUNCE"
    UNKNOWN = "UNKNOWN"


REASONS: tuple[str, ...] = tuple(r.value for r in SuppressionReason)

# OCI's rule: one hard bounce suppresses at once; this many soft-bounced messages do.
SOFT_BOUNCE_LIMIT = 4


def suppression_key(address: str) -> str:
    """How a suppressed address is looked up: the whole address without case, so
    `Bob@X` and `bob@x` are one entry (declared, learned, added or removed)."""
    return address.lower()


def parse_reason(text: str) -> SuppressionReason:
    """A reason in any case; ValueError naming the choices otherwise."""
    try:
        return SuppressionReason(text.upper())
    except ValueError:
        raise ValueError(f"{text!r} is not one of: {', '.join(REASONS)}") from None
