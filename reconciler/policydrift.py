"""How a published relay policy differs from what the state says it should be: what
plan reports ("Relay policy: ...") and what makes apply publish it again."""

from __future__ import annotations

from typing import Any


def policy_difference(current: dict[str, Any] | None, wanted: dict[str, Any]) -> str | None:
    """How a published policy document differs from the wanted one in what a relay
    enforces (not the revision, which only counts observations, nor when it was
    published); None when it does not. Documents, not parsed policies: a damaged one is
    simply different, and a plan does not pay for parsing it."""
    if current is None or current.get("format") != wanted.get("format"):
        return "is missing or cannot be read"
    if current.get("version") != wanted["version"]:
        found, writes = current.get("version"), wanted["version"]
        return f"is document version {found}, this postform writes {writes}"
    volatile = ("revision", "published_at")
    if any(current.get(k) != v for k, v in wanted.items() if k not in volatile) or set(
        current
    ) != set(wanted):
        return "does not match the state (damaged, edited or out of date)"
    return None
