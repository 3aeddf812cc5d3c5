"""Where the PostgreSQL backend keeps the published relay policy, and how relays are told
about a new one: what both planes must agree on when they share a database."""

from __future__ import annotations

POLICY_TABLE = "policies"  # name, serial, revision, lineage, document, published_at
POLICY_CHANNEL = "postform_policy"  # NOTIFY payload: "<schema>:<state name>"


def channel_payload(schema: str, name: str) -> str:
    return f"{schema}:{name}"
