"""postform's tables in PostgreSQL, created on first use under a schema of their own,
with a schema version and forward migrations (plain SQL, applied in order under an
advisory lock, so concurrent first runs do not race).

A role that only reads (a relay) never migrates: it finds the tables the control plane
made. Several named states share the tables.
"""

from __future__ import annotations

from typing import Any

from reconciler.errors import StateError
from relay.pgpolicy import POLICY_TABLE
from relay.store.pgnames import (
    AUDIT,
    BUCKETS,
    DAILY,
    EVENTS,
    KEYS,
    LOGIN_BLOCKS,
    LOGIN_FAILURES,
    RELAY_TABLES,
    SOFT_BOUNCES,
    SUPPRESSIONS,
)

# Serialises migrations across processes (an arbitrary constant; pg_advisory_xact_lock).
MIGRATION_LOCK = 7_315_004_224_517_001

MIGRATIONS: tuple[str, ...] = (
    # 1: states with their history, lock holders, the names ever used, published policies.
    f"""
    CREATE TABLE {{s}}.states (
        name text PRIMARY KEY,
        lineage text NOT NULL,
        serial bigint NOT NULL,
        revision bigint NOT NULL,
        document bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL);
    CREATE TABLE {{s}}.state_versions (
        name text NOT NULL,
        serial bigint NOT NULL,
        revision bigint NOT NULL,
        lineage text NOT NULL,
        document bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL,
        PRIMARY KEY (name, serial, revision));
    CREATE TABLE {{s}}.state_names (
        name text PRIMARY KEY,
        lineage text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE {{s}}.locks (
        name text PRIMARY KEY,
        lock_id text NOT NULL,
        info jsonb NOT NULL,
        backend_pid integer NOT NULL);
    CREATE TABLE {{s}}.{POLICY_TABLE} (
        name text PRIMARY KEY,
        serial bigint NOT NULL,
        revision bigint NOT NULL,
        lineage text NOT NULL,
        document bytea NOT NULL,
        published_at timestamptz NOT NULL DEFAULT now());
    """,
    # 2: the relays' shared store (relay.store.backend: postgres), keyed by tenant (state).
    f"""
    CREATE TABLE {{s}}.{SUPPRESSIONS} (
        tenant text NOT NULL, key text NOT NULL, address text NOT NULL,
        reason text NOT NULL, created double precision NOT NULL,
        reply text, queue_id text, note text, PRIMARY KEY (tenant, key));
    CREATE TABLE {{s}}.{SOFT_BOUNCES} (
        tenant text NOT NULL, key text NOT NULL, count integer NOT NULL,
        updated double precision NOT NULL, PRIMARY KEY (tenant, key));
    CREATE TABLE {{s}}.{AUDIT} (
        tenant text NOT NULL, time double precision NOT NULL, action text NOT NULL,
        address text NOT NULL, reason text, note text);
    CREATE TABLE {{s}}.{BUCKETS} (
        tenant text NOT NULL, name text NOT NULL, tokens double precision NOT NULL,
        updated double precision NOT NULL, PRIMARY KEY (tenant, name));
    CREATE TABLE {{s}}.{DAILY} (
        tenant text NOT NULL, day date NOT NULL, used bigint NOT NULL,
        PRIMARY KEY (tenant, day));
    CREATE TABLE {{s}}.{LOGIN_FAILURES} (
        tenant text NOT NULL, peer text NOT NULL, username text NOT NULL,
        at double precision NOT NULL);
    CREATE INDEX ON {{s}}.{LOGIN_FAILURES} (tenant, peer, username, at);
    CREATE TABLE {{s}}.{LOGIN_BLOCKS} (
        tenant text NOT NULL, peer text NOT NULL, username text NOT NULL,
        until double precision NOT NULL, PRIMARY KEY (tenant, peer, username));
    """,
    # 3: secrets the relays of a fleet share (the bounce key that signs VERP addresses).
    f"""
    CREATE TABLE {{s}}.{KEYS} (
        tenant text NOT NULL, name text NOT NULL, key bytea NOT NULL,
        PRIMARY KEY (tenant, name));
    """,
    # 4: the event lines of every relay of a fleet, for trace, usage and the dashboard;
    # looked up by queue ID, Message-ID and recipient, read and pruned by time.
    f"""
    CREATE TABLE {{s}}.{EVENTS} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant text NOT NULL, ts timestamptz NOT NULL, relay_host text NOT NULL,
        event text NOT NULL, queue_id text, recipients text[], message_id text,
        record jsonb NOT NULL);
    CREATE INDEX ON {{s}}.{EVENTS} (tenant, ts, id);
    CREATE INDEX ON {{s}}.{EVENTS} (tenant, queue_id, ts);
    CREATE INDEX ON {{s}}.{EVENTS} (tenant, message_id);
    CREATE INDEX ON {{s}}.{EVENTS} USING gin (recipients);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def ensure_schema(conn: Any, schema: str, relay_role: str | None = None) -> None:
    """Create or migrate postform's tables in `schema` when they are not current, and let
    `relay_role` read the published policy (and nothing else)."""
    if _version(conn, schema) != SCHEMA_VERSION:
        _migrate(conn, schema)
    if relay_role is not None:
        _grant_relay(conn, schema, relay_role)


def _grant_relay(conn: Any, schema: str, role: str) -> None:
    """The relay role reads the policy and uses the shared store's tables: nothing else."""
    from psycopg import sql

    row = conn.execute(
        "SELECT has_table_privilege(%s, %s, 'SELECT') AND has_table_privilege(%s, %s, 'DELETE')",
        (role, f"{schema}.{POLICY_TABLE}", role, f"{schema}.{RELAY_TABLES[-1]}"),
    ).fetchone()
    if row and row[0]:
        return
    name, who = sql.Identifier(schema), sql.Identifier(role)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, who))
    conn.execute(
        sql.SQL("GRANT SELECT ON {}.{} TO {}").format(name, sql.Identifier(POLICY_TABLE), who)
    )
    for table in RELAY_TABLES:
        conn.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {}.{} TO {}").format(
                name, sql.Identifier(table), who
            )
        )


def _migrate(conn: Any, schema: str) -> None:
    from psycopg import sql

    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        name = sql.Identifier(schema)
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.meta (key text PRIMARY KEY, value text NOT NULL)"
            ).format(name)
        )
        version = _version(conn, schema) or 0
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the database schema {schema} is at version {version}; this postform knows "
                f"{SCHEMA_VERSION}: upgrade postform"
            )
        for number in range(version, SCHEMA_VERSION):
            conn.execute(MIGRATIONS[number].format(s=name.as_string(conn)))
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ).format(name),
            (str(SCHEMA_VERSION),),
        )


def _version(conn: Any, schema: str) -> int | None:
    row = conn.execute("SELECT to_regclass(%s)", (f"{schema}.meta",)).fetchone()
    if row is None or row[0] is None:
        return None
    from psycopg import sql

    found = conn.execute(
        sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'").format(
            sql.Identifier(schema)
        )
    ).fetchone()
    return int(found[0]) if found else 0
