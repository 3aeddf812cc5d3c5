"""The postgres backend's lock: a session advisory lock per state name, which the server
drops when the holder's connection dies (a killed CI job never leaves it behind), plus a
row naming the holder for the "held by" message and `force-unlock`."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from reconciler.errors import StateError, StateLockedError
from reconciler.state.lockinfo import LockInfo, held_message

POLL_SECONDS = 0.1
HOLDER_WAIT = 1.0  # seconds a refusal waits for the holder to name itself
Guard = Callable[[Callable[[], Any]], Any]


class AdvisoryLock:
    def __init__(
        self, conn: Any, sql: Callable[[str], Any], name: str, guard: Guard, describe: str
    ) -> None:
        self.conn = conn
        self.sql = sql
        self.name = name
        self.guard = guard
        self.describe = describe
        # The lock's key: 64 bits of a hash of the schema and the state's name.
        text = sql("{s}").as_string(conn) + ":" + name
        self.key = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)

    @contextmanager
    def hold(self, operation: str, timeout: float) -> Iterator[LockInfo]:
        deadline = time.monotonic() + timeout
        while not self._try():
            if time.monotonic() >= deadline:
                holder = self._holder_soon()
                if holder is None and self._try():
                    break  # released while we looked for who held it
                raise StateLockedError(held_message(holder, timeout))
            time.sleep(POLL_SECONDS)
        info = LockInfo.new(operation)
        self.guard(
            lambda: self.conn.execute(
                self.sql(
                    "INSERT INTO {s}.locks (name, lock_id, info, backend_pid)"
                    " VALUES (%s, %s, %s, pg_backend_pid()) ON CONFLICT (name) DO UPDATE SET"
                    " lock_id = excluded.lock_id, info = excluded.info,"
                    " backend_pid = excluded.backend_pid"
                ),
                (self.name, info.id, json.dumps(info.to_dict())),
            )
        )
        try:
            yield info
        finally:
            self._release(info.id)

    def _release(self, lock_id: str) -> None:
        import psycopg

        try:
            self.conn.execute(
                self.sql("DELETE FROM {s}.locks WHERE name = %s AND lock_id = %s"),
                (self.name, lock_id),
            )
            self.conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # the connection is gone: the server released the lock with it

    def _try(self) -> bool:
        return bool(
            self.guard(
                lambda: self.conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (self.key,)
                ).fetchone()[0]
            )
        )

    def _holder_soon(self) -> LockInfo | None:
        """Who holds the lock. The holder names itself in a statement right after taking
        it, so a refusal that lands in between waits (up to HOLDER_WAIT) for that row
        rather than saying nothing of who holds it."""
        end = time.monotonic() + HOLDER_WAIT
        while (info := self.holder()) is None and time.monotonic() < end:
            time.sleep(POLL_SECONDS / 5)
        return info

    def holder(self) -> LockInfo | None:
        row = self.guard(
            lambda: self.conn.execute(
                self.sql("SELECT info FROM {s}.locks WHERE name = %s"), (self.name,)
            ).fetchone()
        )
        return None if row is None else LockInfo.from_dict(row[0])

    def force_unlock(self, lock_id: str) -> bool:
        """Break the lock: end the holder's database session (the server then drops its
        advisory lock) and remove its row; whether that session was still there."""
        row = self.conn.execute(
            self.sql("SELECT lock_id, backend_pid FROM {s}.locks WHERE name = %s"), (self.name,)
        ).fetchone()
        if row is None:
            raise StateError(f"the {self.describe} is not locked")
        if row[0] != lock_id:
            raise StateError(f"lock ID {lock_id} does not match the lock held ({row[0]})")
        ended = self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s", (row[1],)
        ).fetchone()
        self.conn.execute(
            self.sql("DELETE FROM {s}.locks WHERE name = %s AND lock_id = %s"),
            (self.name, lock_id),
        )
        return bool(ended and ended[0])
