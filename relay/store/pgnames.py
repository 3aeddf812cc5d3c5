"""The shared relay store's tables and notification channel in PostgreSQL: what the
control plane creates (reconciler/state/pgschema.py) and every relay uses. Every row
carries the state's name (its tenant), so several states may share one database."""

from __future__ import annotations

SUPPRESSIONS = "relay_suppressions"  # tenant, key, address, reason, created, reply, queue_id, note
SOFT_BOUNCES = "relay_soft_bounces"  # tenant, key, count, updated
AUDIT = "relay_suppression_audit"  # tenant, time, action, address, reason, note
BUCKETS = "relay_buckets"  # tenant, name, tokens, updated (a token bucket for the fleet)
DAILY = "relay_daily"  # tenant, day, used (recipients leased for the UTC day)
LOGIN_FAILURES = "relay_login_failures"  # tenant, peer, username, at
LOGIN_BLOCKS = "relay_login_blocks"  # tenant, peer, username, until
KEYS = "relay_keys"  # tenant, name, key (secrets every relay of the fleet shares)
# tenant, id, ts, relay_host, event, queue_id, recipients (lowercased), message_id, record:
# the event lines every relay ships (relay/store/eventshipper.py) for trace, usage, dashboard
EVENTS = "relay_events"
# The last one is the newest: the grant check looks at it, so older grants are renewed.
RELAY_TABLES = (
    SUPPRESSIONS, SOFT_BOUNCES, AUDIT, BUCKETS, DAILY, LOGIN_FAILURES, LOGIN_BLOCKS, KEYS,
    EVENTS,
)  # fmt: skip

# NOTIFY payload: JSON {"t": tenant, "k": "sup" | "unsup" | "block", ...}
RELAY_CHANNEL = "postform_relay"
