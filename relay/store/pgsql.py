"""The shared relay store's SQL, in one place: functions that take a psycopg connection,
the schema and the tenant (the state's name). The relays call them from their store
thread (pgruntime.py), the `suppressions` commands directly. Times are the server's
clock (epoch seconds), so relays with drifting clocks still agree.
"""

from __future__ import annotations

import json
from typing import Any

from relay.contract.suppression import SOFT_BOUNCE_LIMIT, SuppressionReason, suppression_key
from relay.store.interfaces import Suppression
from relay.store.pgnames import (
    AUDIT,
    KEYS,
    LOGIN_BLOCKS,
    LOGIN_FAILURES,
    RELAY_CHANNEL,
    SOFT_BOUNCES,
    SUPPRESSIONS,
)
from relay.store.storable import storable

NOW = "extract(epoch from clock_timestamp())"
_COLUMNS = "address, reason, created, reply, queue_id, note"


def q(schema: str, text: str) -> Any:
    """`text` with {s} as the schema and table names as identifiers."""
    from psycopg import sql

    return sql.SQL(text).format(s=sql.Identifier(schema))


def notify(conn: Any, payload: dict[str, Any]) -> None:
    """Payloads are small by construction (an address is at most 254 characters), far
    below PostgreSQL's 8000-byte limit."""
    conn.execute("SELECT pg_notify(%s, %s)", (RELAY_CHANNEL, json.dumps(payload)))


def add_suppression(
    conn: Any, schema: str, tenant: str, address: str, reason: str, **extra: Any
) -> bool:
    key = suppression_key(address)
    row = conn.execute(
        q(
            schema,
            f"INSERT INTO {{s}}.{SUPPRESSIONS} (tenant, key, address, reason, created, reply,"
            f" queue_id, note) VALUES (%s, %s, %s, %s, {NOW}, %s, %s, %s)"
            " ON CONFLICT (tenant, key) DO NOTHING RETURNING created",
        ),
        (
            tenant,
            key,
            address,
            reason,
            storable(extra.get("reply")),
            extra.get("queue_id"),
            storable(extra.get("note")),
        ),
    ).fetchone()
    if row is None:
        return False
    why = storable(extra.get("note") or extra.get("reply"))
    _audit(conn, schema, tenant, "add", address, reason, why)
    notify(conn, {"t": tenant, "k": "sup", "key": key, "address": address, "reason": reason})
    return True


def remove_suppression(
    conn: Any, schema: str, tenant: str, address: str, why: str
) -> Suppression | None:
    key = suppression_key(address)
    row = conn.execute(
        q(
            schema,
            f"DELETE FROM {{s}}.{SUPPRESSIONS} WHERE tenant = %s AND key = %s RETURNING {_COLUMNS}",
        ),
        (tenant, key),
    ).fetchone()
    conn.execute(
        q(schema, f"DELETE FROM {{s}}.{SOFT_BOUNCES} WHERE tenant = %s AND key = %s"), (tenant, key)
    )
    if row is None:
        return None
    _audit(conn, schema, tenant, "remove", row[0], row[1], storable(why))
    notify(conn, {"t": tenant, "k": "unsup", "key": key})
    return Suppression(*row)


def soft_bounce(
    conn: Any, schema: str, tenant: str, address: str, reply: str, queue_id: str
) -> tuple[int, bool]:
    """One more soft-bounced message for `address`, counted over the fleet."""
    key = suppression_key(address)
    row = conn.execute(
        q(
            schema,
            f"INSERT INTO {{s}}.{SOFT_BOUNCES} (tenant, key, count, updated)"
            f" VALUES (%s, %s, 1, {NOW}) ON CONFLICT (tenant, key) DO UPDATE"
            f" SET count = {{s}}.{SOFT_BOUNCES}.count + 1, updated = excluded.updated"
            " RETURNING count",
        ),
        (tenant, key),
    ).fetchone()
    count = int(row[0])
    added = count >= SOFT_BOUNCE_LIMIT and add_suppression(
        conn, schema, tenant, address, SuppressionReason.SOFTBOUNCE, reply=reply, queue_id=queue_id
    )
    return count, added


def delivered(conn: Any, schema: str, tenant: str, addresses: list[str]) -> None:
    keys = [suppression_key(a) for a in addresses]
    conn.execute(
        q(schema, f"DELETE FROM {{s}}.{SOFT_BOUNCES} WHERE tenant = %s AND key = ANY(%s)"),
        (tenant, keys),
    )


def suppressions(
    conn: Any, schema: str, tenant: str, reason: str | None = None
) -> list[Suppression]:
    text = f"SELECT {_COLUMNS} FROM {{s}}.{SUPPRESSIONS} WHERE tenant = %s"
    args: tuple[Any, ...] = (tenant,)
    if reason:
        text, args = text + " AND reason = %s", (tenant, reason.upper())
    rows = conn.execute(q(schema, text + " ORDER BY key"), args).fetchall()
    return [Suppression(*r) for r in rows]


def soft_counts(conn: Any, schema: str, tenant: str) -> dict[str, int]:
    rows = conn.execute(
        q(schema, f"SELECT key, count FROM {{s}}.{SOFT_BOUNCES} WHERE tenant = %s"), (tenant,)
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def _audit(conn: Any, schema: str, tenant: str, action: str, address: str, reason: str | None,
           note: str | None) -> None:  # fmt: skip
    conn.execute(
        q(
            schema,
            f"INSERT INTO {{s}}.{AUDIT} (tenant, time, action, address, reason, note)"
            f" VALUES (%s, {NOW}, %s, %s, %s, %s)",
        ),
        (tenant, action, address, reason, note),
    )


STMT_NOW = "extract(epoch from statement_timestamp())"


def shared_key(conn: Any, schema: str, tenant: str, name: str, candidate: bytes) -> bytes:
    """The fleet's key `name`: `candidate` if no relay stored one before, else theirs."""
    conn.execute(
        q(schema, f"INSERT INTO {{s}}.{KEYS} (tenant, name, key) VALUES (%s, %s, %s)"
                  " ON CONFLICT DO NOTHING"),
        (tenant, name, candidate),
    )  # fmt: skip
    row = conn.execute(
        q(schema, f"SELECT key FROM {{s}}.{KEYS} WHERE tenant = %s AND name = %s"),
        (tenant, name),
    ).fetchone()
    return bytes(row[0])


def login_failed(
    conn: Any,
    schema: str,
    tenant: str,
    peer: str,
    username: str,
    window: float,
    block_after: int,
    block_for: float,
) -> tuple[int, float | None]:
    """Record a failed login; (failures in the window over the fleet, blocked until)."""
    with conn.transaction():
        conn.execute(
            q(schema, f"DELETE FROM {{s}}.{LOGIN_FAILURES} WHERE tenant = %s AND peer = %s"
                      f" AND username = %s AND at < {NOW} - %s"),
            (tenant, peer, username, window),
        )  # fmt: skip
        conn.execute(
            q(schema, f"INSERT INTO {{s}}.{LOGIN_FAILURES} (tenant, peer, username, at)"
                      f" VALUES (%s, %s, %s, {NOW})"),
            (tenant, peer, username),
        )  # fmt: skip
        row = conn.execute(
            q(schema, f"SELECT count(*), {NOW} FROM {{s}}.{LOGIN_FAILURES}"
                      " WHERE tenant = %s AND peer = %s AND username = %s"),
            (tenant, peer, username),
        ).fetchone()  # fmt: skip
        count, now = int(row[0]), float(row[1])
        if count < block_after:
            return count, None
        until = now + block_for
        conn.execute(
            q(schema, f"INSERT INTO {{s}}.{LOGIN_BLOCKS} (tenant, peer, username, until)"
                      " VALUES (%s, %s, %s, %s) ON CONFLICT (tenant, peer, username)"
                      " DO UPDATE SET until = excluded.until"),
            (tenant, peer, username, until),
        )  # fmt: skip
        notify(
            conn, {"t": tenant, "k": "block", "peer": peer, "username": username, "until": until}
        )
    return count, until


def login_succeeded(conn: Any, schema: str, tenant: str, peer: str, username: str) -> None:
    conn.execute(
        q(schema, f"DELETE FROM {{s}}.{LOGIN_FAILURES} WHERE tenant = %s AND peer = %s"
                  " AND username = %s"),
        (tenant, peer, username),
    )  # fmt: skip


def login_blocks(conn: Any, schema: str, tenant: str) -> dict[tuple[str, str], float]:
    rows = conn.execute(
        q(schema, f"SELECT peer, username, until FROM {{s}}.{LOGIN_BLOCKS}"
                  f" WHERE tenant = %s AND until > {NOW}"),
        (tenant,),
    ).fetchall()  # fmt: skip
    return {(r[0], r[1]): float(r[2]) for r in rows}


def prune_logins(conn: Any, schema: str, tenant: str, window: float) -> None:
    """Forget failures older than the window and blocks that ended (every relay's resync
    does this, so the tables stay as small as the guessing of the last window)."""
    conn.execute(
        q(schema, f"DELETE FROM {{s}}.{LOGIN_FAILURES} WHERE tenant = %s AND at < {NOW} - %s"),
        (tenant, window),
    )
    conn.execute(
        q(schema, f"DELETE FROM {{s}}.{LOGIN_BLOCKS} WHERE tenant = %s AND until <= {NOW}"),
        (tenant,),
    )
