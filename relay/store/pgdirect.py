"""The shared suppression list read and written directly, for the `suppressions` commands
of a fleet (relay.store.backend: postgres). A relay's own mirror would only be its view;
the commands act on the list every relay follows, and every relay hears of the change
by NOTIFY within a tick.
"""

from __future__ import annotations

from typing import Any

from relay.pgconnect import DatabaseError, connect
from relay.store import pgsql
from relay.store.interfaces import Suppression
from relay.store.pgruntime import PgTarget


class DirectSuppressions:
    """The commands' part of the SuppressionList protocol, one statement per call."""

    def __init__(self, target: PgTarget) -> None:
        self.target = target
        self._conn = connect(target.dsn_env, autocommit=True, purpose="postform suppressions")

    def _run(self, what: str, work: Any) -> Any:
        import psycopg

        try:
            with self._conn.transaction():
                return work(self._conn, self.target.schema, self.target.tenant)
        except psycopg.Error as exc:
            text = str(exc).strip().splitlines()
            raise DatabaseError(
                f"the shared suppression list: cannot {what}: {text[0] if text else exc}"
            ) from None

    def add(self, address: str, reason: str, *, note: str | None = None) -> bool:
        return bool(
            self._run(
                "add", lambda c, s, t: pgsql.add_suppression(c, s, t, address, reason, note=note)
            )
        )

    def remove(self, address: str, why: str) -> Suppression | None:
        result: Suppression | None = self._run(
            "remove", lambda c, s, t: pgsql.remove_suppression(c, s, t, address, why)
        )
        return result

    def list(self, reason: str | None = None) -> list[Suppression]:
        rows: list[Suppression] = self._run(
            "list", lambda c, s, t: pgsql.suppressions(c, s, t, reason)
        )
        return rows

    def close(self) -> None:
        self._conn.close()


class DirectStore:
    """What the commands need of a store: its suppressions, and close()."""

    def __init__(self, target: PgTarget) -> None:
        self.suppressions = DirectSuppressions(target)

    def close(self) -> None:
        self.suppressions.close()
