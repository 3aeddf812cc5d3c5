"""The SQL of the fleet's limits: token buckets (messages_per_minute and each user's
share of it) and the daily recipient count, leased in batches by relay/store/leases.py."""

from __future__ import annotations

from typing import Any

from relay.store.pgnames import BUCKETS, DAILY
from relay.store.pgsql import STMT_NOW, q


def lease_tokens(
    conn: Any, schema: str, tenant: str, per_minute: int, wanted: int, name: str = "messages"
) -> int:
    """Take up to `wanted` tokens from the fleet's bucket `name` (messages_per_minute,
    or a user's share of it): one statement, so the row is locked for one round trip."""
    conn.execute(
        q(schema, f"INSERT INTO {{s}}.{BUCKETS} (tenant, name, tokens, updated)"
                  f" VALUES (%s, %s, %s, {STMT_NOW}) ON CONFLICT DO NOTHING"),
        (tenant, name, float(per_minute)),
    )  # fmt: skip
    row = conn.execute(
        q(schema, f"""
            WITH now AS (SELECT {STMT_NOW} AS t),
            cur AS (
                SELECT LEAST(%(cap)s, b.tokens + (now.t - b.updated) * %(rate)s) AS avail
                FROM {{s}}.{BUCKETS} b, now
                WHERE b.tenant = %(tenant)s AND b.name = %(name)s FOR UPDATE OF b),
            grant_ AS (SELECT avail, LEAST(%(wanted)s, GREATEST(0, floor(avail)))::int AS n
                       FROM cur)
            UPDATE {{s}}.{BUCKETS} b SET tokens = grant_.avail - grant_.n, updated = now.t
            FROM grant_, now WHERE b.tenant = %(tenant)s AND b.name = %(name)s
            RETURNING grant_.n"""),
        {"cap": float(per_minute), "rate": per_minute / 60.0, "tenant": tenant,
         "wanted": wanted, "name": name},
    ).fetchone()  # fmt: skip
    return int(row[0]) if row else 0


def return_tokens(
    conn: Any, schema: str, tenant: str, per_minute: int, count: int, name: str = "messages"
) -> None:
    conn.execute(
        q(
            schema,
            f"UPDATE {{s}}.{BUCKETS} SET tokens = LEAST(%s, tokens + %s)"
            " WHERE tenant = %s AND name = %s",
        ),
        (float(per_minute), count, tenant, name),
    )


def lease_recipients(conn: Any, schema: str, tenant: str, day: str, limit: int, wanted: int) -> int:
    """Take up to `wanted` recipients from the day's recipients_per_day for the fleet, in
    one statement (the row is locked for one round trip only)."""
    conn.execute(
        q(schema, f"INSERT INTO {{s}}.{DAILY} (tenant, day, used) VALUES (%s, %s, 0)"
                  " ON CONFLICT DO NOTHING"),
        (tenant, day),
    )  # fmt: skip
    row = conn.execute(
        q(schema, f"""
            WITH cur AS (
                SELECT LEAST(%(wanted)s, GREATEST(0, %(limit)s - used))::int AS n
                FROM {{s}}.{DAILY} WHERE tenant = %(tenant)s AND day = %(day)s FOR UPDATE)
            UPDATE {{s}}.{DAILY} d SET used = d.used + cur.n FROM cur
            WHERE d.tenant = %(tenant)s AND d.day = %(day)s RETURNING cur.n"""),
        {"wanted": wanted, "limit": limit, "tenant": tenant, "day": day},
    ).fetchone()  # fmt: skip
    return int(row[0]) if row else 0


def return_recipients(conn: Any, schema: str, tenant: str, day: str, count: int) -> None:
    conn.execute(
        q(schema, f"UPDATE {{s}}.{DAILY} SET used = GREATEST(used - %s, 0)"
                  " WHERE tenant = %s AND day = %s"),
        (count, tenant, day),
    )  # fmt: skip


def used_recipients(conn: Any, schema: str, tenant: str, day: str) -> int:
    row = conn.execute(
        q(schema, f"SELECT used FROM {{s}}.{DAILY} WHERE tenant = %s AND day = %s"), (tenant, day)
    ).fetchone()
    return int(row[0]) if row else 0
