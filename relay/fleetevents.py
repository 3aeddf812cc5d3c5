"""The fleet's events, for the reports: `relay trace`, `relay usage` and the dashboard read
the shared table every relay ships its event lines to (relay_events, see
relay/store/eventshipper.py) when the fleet's store is configured, and this host's event
files otherwise.

- `fleet_target(site)`: the PostgreSQL target of the fleet's table, or None when the
  applied policy has no fleet store (relay.store.backend: postgres on a postgres state);
- `fleet_records(target, since_iso, until_iso=None)`: the records in time order, streamed;
- `fleet_usage(target, month)`: a month's usage over the fleet;
- `FleetEvents(target)`: the lookups `relay trace` makes, by the table's indexes.

Each record is the event line as its relay wrote it, plus "relay_host" (RELAY_HOST): the
relay that wrote it (host name and data folder). It is not "host", which delivery events
already use for the receiving MX host.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.contract.errors import UserError
from relay.contract.policy import PolicyMissing, PolicyUnavailable
from relay.eventindex import lookup_key
from relay.pgconnect import DatabaseError, connect, where
from relay.site import RelaySite
from relay.store import pgevents
from relay.store.pgruntime import PgTarget
from relay.usage import COUNTED, LOOKBACK_DAYS, Usage, month_bounds, usage_of

RELAY_HOST = "relay_host"
LOCAL_HINT = "(--local reads this host's event files instead)"


def fleet_target(site: RelaySite) -> PgTarget | None:
    """Where the fleet's events are, when the applied policy shares a store over the
    fleet (a postgres state, and relay.store.backend: postgres); None otherwise, when the
    reports read this host's event files. The policy this host cached stands in while
    the state cannot be read."""
    if site.pg is None:
        return None
    try:
        policy = site.source().load()
    except PolicyUnavailable as exc:
        if exc.cached is None:
            raise
        policy = exc.cached
    except PolicyMissing:  # nothing published yet: no fleet either
        return None
    return site.pg if policy.relay.store == "postgres" else None


def fleet_records(
    target: PgTarget,
    since_iso: str,
    until_iso: str | None = None,
    *,
    events: Sequence[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The fleet's records from `since_iso` (and before `until_iso`; ISO times, UTC when
    they name no zone) in time order, each with RELAY_HOST; only the named `events` when
    given. Streamed from a server-side cursor, never all in memory. DatabaseError when
    the table cannot be read."""
    since, until = _moment(since_iso), _moment(until_iso) if until_iso else None
    conn = _connect(target, "postform fleet events")
    try:
        yield from pgevents.records(conn, target.schema, target.tenant, since, until, events)
    except _psycopg_error() as exc:
        raise _unreadable(target, exc) from None
    finally:
        conn.close()


class FleetEvents:
    """`relay trace`'s lookups in the fleet's table: EventIndex's reading half."""

    def __init__(self, target: PgTarget) -> None:
        self.target = target
        self.conn = _connect(target, "postform trace", autocommit=True)

    def close(self) -> None:
        self.conn.close()

    def queue_ids(self, query: str, since: str = "") -> list[str]:
        """The queue IDs a query names: a queue ID itself, a Message-ID or a recipient."""
        key = lookup_key(query)
        schema, tenant = self.target.schema, self.target.tenant
        try:
            if key is None:
                found = pgevents.known(self.conn, schema, tenant, query.strip())
                return [query.strip()] if found else []
            column = "message_id" if key.startswith("msgid:") else "recipients"
            value = key.split(":", 1)[1]
            moment = _moment(since) if since else None
            return pgevents.queue_ids(self.conn, schema, tenant, column, value, moment)
        except _psycopg_error() as exc:
            raise _unreadable(self.target, exc) from None

    def events(self, queue_id: str) -> list[dict[str, Any]]:
        try:
            return pgevents.queue_events(
                self.conn, self.target.schema, self.target.tenant, queue_id
            )
        except _psycopg_error() as exc:
            raise _unreadable(self.target, exc) from None


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"not an ISO time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _connect(target: PgTarget, purpose: str, autocommit: bool = False) -> Any:
    try:
        return connect(target.dsn_env, autocommit=autocommit, purpose=purpose)
    except DatabaseError as exc:
        raise DatabaseError(f"the fleet's events: {exc} {LOCAL_HINT}") from None


def _psycopg_error() -> type[Exception]:
    import psycopg

    return psycopg.Error


def _unreadable(target: PgTarget, exc: Exception) -> DatabaseError:
    text = str(exc).strip().splitlines()
    why = text[0] if text else type(exc).__name__
    return DatabaseError(
        f"cannot read the fleet's events in {where(target.dsn_env)}: {why} {LOCAL_HINT}"
    )


def fleet_usage(target: PgTarget, month: str) -> Usage:
    """The month's usage over the fleet: the accepted lines from a few days before (the
    messages its first deliveries belong to), then the month's counted events."""
    start, end = month_bounds(month)
    before = (datetime.fromisoformat(start) - timedelta(days=LOOKBACK_DAYS)).isoformat()
    records = itertools.chain(
        fleet_records(target, before, start, events=("accepted",)),
        fleet_records(target, start, end, events=COUNTED),
    )
    return usage_of(records, month)
