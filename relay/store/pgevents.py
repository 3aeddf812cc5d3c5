"""The fleet's event table in SQL (relay_events, made by the control plane's migration 4):
rows in, old rows out, and the reads `relay trace`, `relay usage` and the dashboard make.

A row is one event line as the relay wrote it (`record`, jsonb) with what it is looked up
by beside it: the time, the relay that wrote it, the event, the queue ID, the recipients
(lowercased: `recipient` and `rcpt_tos`) and the Message-ID. Every row carries the state's
name (its tenant), like the shared store's other tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from relay.store.pgnames import EVENTS
from relay.store.pgsql import q

_COPY = "COPY {s}.%s (tenant, ts, relay_host, event, queue_id, recipients, message_id, record)"
# The record goes as JSON text: COPY's text format has the server parse it as jsonb.
COPY_TYPES = ("text", "timestamptz", "text", "text", "text", "text[]", "text", "text")
# Serialises pruning over the fleet (pg_try_advisory_xact_lock(PRUNE_LOCK, hashtext(tenant))).
PRUNE_LOCK = 731_500_416
PRUNE_CHUNK = 5_000  # rows one prune deletes at most (a statement stays short)


def row_of(tenant: str, host: str, record: dict[str, Any]) -> tuple[Any, ...] | None:
    """The table row of one event record; None for a record without a usable time."""
    try:
        ts = datetime.fromisoformat(str(record.get("ts")))
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    queue_id = record.get("queue_id")
    message_id = record.get("message_id")
    return (
        tenant,
        ts,
        host,
        _clean(str(record.get("event", "?"))),
        _clean(queue_id) if isinstance(queue_id, str) else None,
        recipients_of(record) or None,
        _clean(message_id.strip()) if isinstance(message_id, str) and message_id else None,
        _json(record),
    )


def recipients_of(record: dict[str, Any]) -> list[str]:
    """The addresses an event is found by (what the local index keys, relay/eventindex.py)."""
    found = [record.get("recipient"), *(record.get("rcpt_tos") or ())]
    return sorted({_clean(a.lower()) for a in found if isinstance(a, str) and a})


def _clean(text: str) -> str:
    """PostgreSQL's text holds no NUL character."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _json(record: dict[str, Any]) -> str:
    text = json.dumps(record, separators=(",", ":"), default=str)
    if "\\u0000" in text:  # jsonb refuses the NUL escape: only such a record is walked
        text = json.dumps(_scrub(record), separators=(",", ":"), default=str)
    return text


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def insert(conn: Any, schema: str, rows: Sequence[tuple[Any, ...]]) -> int:
    """Write rows (from row_of) with one COPY: one statement, all or none of them."""
    cursor = conn.cursor()
    with cursor.copy(q(schema, _COPY % EVENTS + " FROM STDIN")) as copy:
        copy.set_types(list(COPY_TYPES))
        for row in rows:
            copy.write_row(row)
    return len(rows)


def prune(conn: Any, schema: str, tenant: str, days: float, chunk: int = PRUNE_CHUNK) -> int | None:
    """Delete up to `chunk` of the tenant's rows older than `days` days, oldest first; the
    number deleted, or None when another relay is pruning right now."""
    with conn.transaction():
        row = conn.execute(
            "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (PRUNE_LOCK, tenant)
        ).fetchone()
        if not row or not row[0]:
            return None
        deleted = conn.execute(
            q(schema, f"DELETE FROM {{s}}.{EVENTS} WHERE id IN (SELECT id FROM {{s}}.{EVENTS}"
                      " WHERE tenant = %s AND ts < now() - make_interval(secs => %s)"
                      " ORDER BY ts LIMIT %s)"),
            (tenant, days * 86_400, chunk),
        )  # fmt: skip
        return int(deleted.rowcount)


def records(
    conn: Any,
    schema: str,
    tenant: str,
    since: datetime,
    until: datetime | None = None,
    events: Sequence[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The tenant's records from `since` (and before `until`) in time order, with the
    relay that wrote each as "relay_host", read through a server-side cursor in batches
    (`conn` must not be in autocommit mode: the cursor lives in a transaction)."""
    text = f"SELECT record, relay_host FROM {{s}}.{EVENTS} WHERE tenant = %s AND ts >= %s"
    args: list[Any] = [tenant, since]
    if until is not None:
        text, args = text + " AND ts < %s", [*args, until]
    if events is not None:
        text, args = text + " AND event = ANY(%s)", [*args, list(events)]
    with conn.cursor(name="postform_fleet_records") as cursor:
        cursor.itersize = 2000
        cursor.execute(q(schema, text + " ORDER BY ts, id"), args)
        for record, host in cursor:
            yield _with_host(record, host)


def queue_ids(
    conn: Any, schema: str, tenant: str, column: str, value: str, since: datetime | None
) -> list[str]:
    """The queue IDs of the events whose `column` ("message_id" or "recipients") names
    `value`, first seen first."""
    match = {"message_id": "message_id = %s", "recipients": "recipients @> ARRAY[%s]::text[]"}
    text = (
        f"SELECT queue_id FROM {{s}}.{EVENTS} WHERE tenant = %s AND {match[column]}"
        " AND queue_id IS NOT NULL"
    )
    args: list[Any] = [tenant, value]
    if since is not None:
        text, args = text + " AND ts >= %s", [*args, since]
    rows = conn.execute(q(schema, text + " GROUP BY queue_id ORDER BY min(ts)"), args)
    return [str(qid) for (qid,) in rows.fetchall()]


def known(conn: Any, schema: str, tenant: str, queue_id: str) -> bool:
    row = conn.execute(
        q(schema, f"SELECT 1 FROM {{s}}.{EVENTS} WHERE tenant = %s AND queue_id = %s LIMIT 1"),
        (tenant, queue_id),
    ).fetchone()
    return row is not None


def queue_events(conn: Any, schema: str, tenant: str, queue_id: str) -> list[dict[str, Any]]:
    """Every relay's events for one queue ID, in time order."""
    rows = conn.execute(
        q(schema, f"SELECT record, relay_host FROM {{s}}.{EVENTS}"
                  " WHERE tenant = %s AND queue_id = %s ORDER BY ts, id"),
        (tenant, queue_id),
    ).fetchall()  # fmt: skip
    return [_with_host(record, host) for record, host in rows]


def _with_host(record: Any, host: str) -> dict[str, Any]:
    found = dict(record) if isinstance(record, dict) else {"record": record}
    found["relay_host"] = host
    return found
