"""What a webhook receives: which relay events it hears of, the JSON body made of one,
and the signature headers (Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`, so a receiver can refuse an old, replayed request).

Only the fields named here go out: never a password, a key or a message's body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

# The relay's event -> the webhook event type it is.
TYPES = {
    "delivered": "delivered",
    "bounced": "bounced",  # the receiving server refused it (source: delivery)
    "bounce_received": "bounced",  # a bounce message came back later (source: report)
    "complaint": "complaint",
    "suppressed": "suppressed",
    "deferred": "deferred",
}
# The fields of the relay's records a webhook may see, renamed where the name is ours.
FIELDS = {
    "queue_id": "queue_id",
    "sender_domain": "sender_domain",
    "recipient": "recipient",
    "reply": "reply",
    "host": "host",
    "attempts": "attempts",
    "latency": "latency",
    "bounce": "bounce",
    "status": "status",
    "reason": "reason",
    "soft_bounces": "soft_bounces",
    "soft_count": "soft_bounces",
    "feedback_type": "feedback_type",
    "format": "report_format",
    "added": "added",  # suppressed, bounced (report), complaint: did the list gain it
}
USER_AGENT = "postform-relay"


def event_type(record: dict[str, Any]) -> str | None:
    """The webhook event type of a relay event record; None for every other event."""
    return TYPES.get(str(record.get("event")))


def payload(
    record: dict[str, Any], kind: str, relay: str, message: tuple[str, str] | None
) -> dict[str, Any]:
    """The body's JSON for a record of type `kind`; `message` is the (sender, Message-ID)
    of the message it is about, when the relay still knows them."""
    data: dict[str, Any] = {
        ours: record[field] for field, ours in FIELDS.items() if record.get(field) is not None
    }
    if record["event"] == "bounced":
        data["source"] = "delivery"
    elif record["event"] == "bounce_received":
        data["source"] = "report"
    next_attempt = record.get("next_attempt")
    if isinstance(next_attempt, int | float):
        data["retry_at"] = datetime.fromtimestamp(next_attempt, UTC).isoformat(timespec="seconds")
    if message is not None:
        sender, message_id = message
        data.update({k: v for k, v in (("sender", sender), ("message_id", message_id)) if v})
    return {
        "id": uuid.uuid4().hex,
        "type": kind,
        "created_at": record["ts"],
        "relay": relay,
        "data": data,
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def headers(event_id: str, body: bytes, secret: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Postform-Event-Id": event_id,
        "X-Postform-Timestamp": str(timestamp),
        "X-Postform-Signature": signature(secret, timestamp, body),
    }
