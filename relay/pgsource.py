"""The relay policy of a PostgreSQL state, as a relay on another host follows it.

- A new apply reaches the relay at once: the control plane NOTIFYs on publishing and
  this source LISTENs on its own connection; `changed()` drains notifications without
  blocking. A slow poll (every `poll_interval` seconds) covers a lost notification, and
  a lost connection is retried at that pace.
- Every policy loaded is kept in a local cache file (as published: its secrets stay
  sealed when the state is encrypted; mode 0600), so a relay restarts and serves while
  PostgreSQL is down: `load()` then raises PolicyUnavailable carrying the cached copy.
- The relay needs only SELECT on the policy table: it never migrates or writes.
"""

from __future__ import annotations

import time
import weakref
from pathlib import Path
from typing import Any

from relay.contract.policy import PolicyError, PolicyMissing, PolicyUnavailable, RelayPolicy
from relay.contract.policycodec import decode_policy
from relay.durable import atomic_write
from relay.pgconnect import DatabaseError, connect, where
from relay.pgpolicy import POLICY_CHANNEL, POLICY_TABLE, channel_payload


class PgPolicySource:
    def __init__(
        self,
        dsn_env: str | None,
        schema: str,
        name: str,
        cache: Path,
        passphrase: bytes | None = None,
        poll_interval: float = 5.0,
    ) -> None:
        self.passphrase = passphrase
        self.dsn_env = dsn_env
        self.schema = schema
        self.name = name
        self.cache = cache
        self.poll_interval = poll_interval
        self._conn: Any = None
        self._checked = 0.0  # when the table was last read (or a connection last tried)
        self._payload = channel_payload(schema, name)

    def describe(self) -> str:
        return f'the policy of postgres state "{self.name}" ({where(self.dsn_env)})'

    def load(self) -> RelayPolicy:
        self._checked = time.monotonic()
        try:
            document = self._fetch()
        except (DatabaseError, _psycopg_error()) as exc:
            self._drop()
            cached = self._cached()
            raise PolicyUnavailable(f"cannot read {self.describe()}: {_why(exc)}", cached) from None
        policy = _parse(document, self.describe(), self.passphrase)
        if self._cached_bytes() != document:
            self.cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(self.cache, document, mode=0o600)
        return policy

    def _fetch(self) -> bytes:
        from psycopg import sql

        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn_env, autocommit=True, purpose="postform relay")
            weakref.finalize(self, self._conn.close)
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(POLICY_CHANNEL)))
        row = self._conn.execute(
            sql.SQL("SELECT document FROM {}.{} WHERE name = %s").format(
                sql.Identifier(self.schema), sql.Identifier(POLICY_TABLE)
            ),
            (self.name,),
        ).fetchone()
        if row is None:
            raise PolicyMissing(f"nothing published for {self.describe()}: run `postform apply`")
        return bytes(row[0])

    def changed(self) -> bool:
        """A notification for this state arrived, or the slow poll is due."""
        due = time.monotonic() - self._checked >= self.poll_interval
        if self._conn is None or self._conn.closed:
            return due
        try:
            notes = list(self._conn.notifies(timeout=0))
        except _psycopg_error():
            self._drop()
            return True
        return due or any(n.channel == POLICY_CHANNEL and n.payload == self._payload for n in notes)

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except _psycopg_error():
                pass
        self._conn = None

    def _cached_bytes(self) -> bytes | None:
        try:
            return self.cache.read_bytes()
        except OSError:
            return None

    def _cached(self) -> RelayPolicy | None:
        document = self._cached_bytes()
        if document is None:
            return None
        try:
            return _parse(document, f"the cached policy {self.cache}", self.passphrase)
        except PolicyError:
            return None

    def close(self) -> None:
        self._drop()


def _parse(document: bytes, what: str, passphrase: bytes | None) -> RelayPolicy:
    try:
        data = decode_policy(document)
    except ValueError as exc:
        raise PolicyError(f"{what} is not valid JSON: {exc}") from None
    try:
        return RelayPolicy.from_dict(data, passphrase)
    except PolicyError as exc:
        raise type(exc)(f"{what}: {exc}") from None


def _psycopg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error


def _why(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
