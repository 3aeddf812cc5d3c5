"""The postgres backend: the state in PostgreSQL, shared by every CI runner.

- A write is one transaction that reads the stored lineage, serial and revision
  `FOR UPDATE` and refuses a write based on anything else (compare-and-swap), stores
  the new version, keeps the last `history` versions, and publishes the relay policy
  with a NOTIFY (relays follow within a second).
- The lock is a session advisory lock per state name (the server drops it when the
  holder's connection dies, so a killed CI job never leaves it behind), plus a row
  naming the holder for the "held by" message and `force-unlock`.
- The connection comes from the environment (relay/pgconnect.py), never the YAML.
"""

from __future__ import annotations

import os
import socket
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from reconciler.errors import StaleStateError
from reconciler.state.backend import PolicyFor
from reconciler.state.local import check_push
from reconciler.state.lockinfo import LockInfo
from reconciler.state.model import State, StateVersion
from reconciler.state.pglock import AdvisoryLock
from reconciler.state.pgschema import ensure_schema
from reconciler.state.settings import StateSettings
from reconciler.state.statefile import decode_state, encode_state
from relay.contract.policy import RelayPolicy
from relay.contract.policycodec import decode_policy, encode_policy
from relay.pgconnect import DatabaseError, connect, where
from relay.pgpolicy import POLICY_CHANNEL, POLICY_TABLE, channel_payload

T = TypeVar("T")


class PostgresBackend:
    def __init__(self, settings: StateSettings) -> None:
        assert settings.name is not None  # the config's rules require it
        self.settings = settings
        self.name = settings.name
        self._conn: Any = None

    def describe(self) -> str:
        return f'postgres state "{self.name}" ({where(self.settings.dsn_env)})'

    def _db(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings.dsn_env, autocommit=True, purpose="postform")
            weakref.finalize(self, self._conn.close)  # closed when the backend goes
            self._guard(
                lambda: ensure_schema(self._conn, self.settings.schema, self.settings.relay_role)
            )
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _guard(self, work: Callable[[], T]) -> T:
        """Run `work`, turning a database failure into a message (never a traceback)."""
        import psycopg

        try:
            return work()
        except psycopg.Error as exc:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"{self.describe()}: {text}") from None

    def _sql(self, text: str) -> Any:
        from psycopg import sql

        return sql.SQL(text).format(s=sql.Identifier(self.settings.schema))

    def read(self) -> State:
        row = self._guard(
            lambda: (
                self._db()
                .execute(self._sql("SELECT document FROM {s}.states WHERE name = %s"), (self.name,))
                .fetchone()
            )
        )
        if row is None:
            return State()
        return decode_state(bytes(row[0]), Path(f"postgres:{self.name}"), "")

    def write(
        self, state: State, policy_for: PolicyFor | None = None, forget_history: bool = False
    ) -> State:
        lineage = state.lineage or _new_lineage()
        new = replace(state, lineage=lineage, serial=state.serial + 1)
        return self._guard(lambda: self._store(state, new, policy_for, forget_history))

    def observe(
        self, state: State, policy_for: PolicyFor | None = None, forget_history: bool = False
    ) -> State:
        new = replace(state, revision=state.revision + 1)
        return self._guard(lambda: self._store(state, new, policy_for, forget_history))

    def _store(
        self, based_on: State | None, new: State, policy_for: PolicyFor | None, forget: bool
    ) -> State:
        import psycopg

        conn = self._db()
        try:
            with conn.transaction():
                if based_on is not None:
                    self._check_current(conn, based_on)
                if forget:
                    self._forget_clear_versions(conn)
                self._put(conn, new, encode_state(new))
                if policy_for is not None:
                    self._publish(conn, policy_for(new))
        except psycopg.errors.UniqueViolation:
            raise StaleStateError(
                f"{self.describe()} was created by another writer at the same time; nothing "
                "was written. Run the command again."
            ) from None
        return new

    def _forget_clear_versions(self, conn: Any) -> None:
        """The first sealed write: the versions before it hold secrets in the clear."""
        conn.execute(self._sql("DELETE FROM {s}.state_versions WHERE name = %s"), (self.name,))

    def _check_current(self, conn: Any, state: State) -> None:
        row = conn.execute(
            self._sql(
                "SELECT lineage, serial, revision FROM {s}.states WHERE name = %s FOR UPDATE"
            ),
            (self.name,),
        ).fetchone()
        stored = (None, 0, 0) if row is None else (row[0], row[1], row[2])
        if stored != (state.lineage, state.serial, state.revision):
            raise StaleStateError(
                f"{self.describe()} changed since it was read (it is at serial {stored[1]}, "
                f"this write was based on serial {state.serial}); nothing was written. "
                "Run the command again."
            )

    def _put(self, conn: Any, new: State, document: bytes) -> None:
        args = (self.name, new.lineage, new.serial, new.revision, document, _who())
        conn.execute(
            self._sql(
                "INSERT INTO {s}.states (name, lineage, serial, revision, document, updated_by)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " lineage = excluded.lineage, serial = excluded.serial,"
                " revision = excluded.revision, document = excluded.document,"
                " updated_at = now(), updated_by = excluded.updated_by"
            ),
            args,
        )
        conn.execute(
            self._sql(
                "INSERT INTO {s}.state_versions (name, lineage, serial, revision, document,"
                " updated_by) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (name, serial, revision) DO UPDATE SET document = excluded.document"
            ),
            args,
        )
        conn.execute(
            self._sql(
                "DELETE FROM {s}.state_versions WHERE name = %s AND (serial, revision) NOT IN"
                " (SELECT serial, revision FROM {s}.state_versions WHERE name = %s"
                "  ORDER BY serial DESC, revision DESC LIMIT %s)"
            ),
            (self.name, self.name, self.settings.history),
        )
        conn.execute(
            self._sql(
                "INSERT INTO {s}.state_names (name, lineage) VALUES (%s, %s)"
                " ON CONFLICT (name) DO NOTHING"
            ),
            (self.name, new.lineage),
        )

    def _publish(self, conn: Any, policy: RelayPolicy) -> None:
        document = encode_policy(policy.to_dict())
        conn.execute(
            self._sql(
                f"INSERT INTO {{s}}.{POLICY_TABLE} (name, serial, revision, lineage, document)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
                " serial = excluded.serial, revision = excluded.revision,"
                " lineage = excluded.lineage, document = excluded.document, published_at = now()"
            ),
            (self.name, policy.serial, policy.revision, policy.lineage, document),
        )
        payload = channel_payload(self.settings.schema, self.name)
        conn.execute("SELECT pg_notify(%s, %s)", (POLICY_CHANNEL, payload))

    def lock(self, operation: str, timeout: float) -> AbstractContextManager[LockInfo]:
        return self._lock().hold(operation, timeout)

    def force_unlock(self, lock_id: str) -> bool:
        return self._guard(lambda: self._lock().force_unlock(lock_id))

    def _lock(self) -> AdvisoryLock:
        return AdvisoryLock(self._db(), self._sql, self.name, self._guard, self.describe())

    def history(self) -> list[StateVersion]:
        rows = self._guard(
            lambda: (
                self._db()
                .execute(
                    self._sql(
                        "SELECT serial, revision, lineage, updated_at, updated_by"
                        " FROM {s}.state_versions WHERE name = %s"
                        " ORDER BY serial DESC, revision DESC"
                    ),
                    (self.name,),
                )
                .fetchall()
            )
        )
        return [
            StateVersion(r[0], r[1], r[2], r[3].isoformat(timespec="seconds"), r[4]) for r in rows
        ]

    def has_history(self) -> bool:
        row = self._guard(
            lambda: (
                self._db()
                .execute(self._sql("SELECT 1 FROM {s}.state_names WHERE name = %s"), (self.name,))
                .fetchone()
            )
        )
        return row is not None

    def pull(self) -> bytes | None:
        row = self._guard(
            lambda: (
                self._db()
                .execute(self._sql("SELECT document FROM {s}.states WHERE name = %s"), (self.name,))
                .fetchone()
            )
        )
        return None if row is None else bytes(row[0])

    def push(self, document: bytes, force: bool = False) -> State:
        incoming = decode_state(document, Path("the pushed state"), "")
        check_push(self.read(), incoming, force, self.describe())

        def store() -> None:
            with self._db().transaction():
                self._put(self._db(), incoming, document)

        self._guard(store)
        return incoming

    def publish(self, policy: RelayPolicy) -> None:
        def publish() -> None:
            with self._db().transaction():
                self._publish(self._db(), policy)

        self._guard(publish)

    def published(self) -> dict[str, Any] | None:
        row = self._guard(
            lambda: (
                self._db()
                .execute(
                    self._sql(f"SELECT document FROM {{s}}.{POLICY_TABLE} WHERE name = %s"),
                    (self.name,),
                )
                .fetchone()
            )
        )
        if row is None:
            return None
        try:
            document = decode_policy(bytes(row[0]))
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def policy_location(self) -> str:
        return f"{self.describe()}, table {self.settings.schema}.{POLICY_TABLE}"


def _new_lineage() -> str:
    import uuid

    return str(uuid.uuid4())


def _who() -> str:
    return f"{os.environ.get('USER') or os.getuid()}@{socket.gethostname()}"
