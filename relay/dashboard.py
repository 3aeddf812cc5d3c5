"""The dashboard, put together: the events of a window (this host's files, or a fleet's
shared table), the applied limits, the queue, the last DNS check and the month's usage.

`Dashboard` is what the relay serves: a snapshot is built at most once every `max_age`
seconds however often the page is loaded (a reload storm costs one pass over the
events, not one a request), and in a child process (`build_apart`), so that pass never
holds the interpreter the relay's SMTP sessions run on.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from relay.contract.policy import RelayPolicy
from relay.contract.settings import Limits
from relay.dashboardsnapshot import snapshot
from relay.dashboardstats import TALLIED, Stats
from relay.queueview import queue_view
from relay.store.pgruntime import PgTarget
from relay.usage import Pricing, Usage, files_for, parse_line, read_usage, ts_of
from relay.usagereport import summary

DEFAULT_WINDOW = timedelta(days=7)
REBUILD_TIMEOUT = 120.0  # seconds a served dashboard's rebuild may take

Records = Callable[[str], Iterable[dict[str, Any]]]  # the events since an ISO time


@dataclass(frozen=True)
class Source:
    """Where the dashboard's events come from: their records since a time, a month's
    usage, and what that covers (said on the page)."""

    records: Records
    usage: Callable[[str], Usage]
    scope: str


def local_source(folder: Path) -> Source:
    return Source(local_records(folder), lambda month: read_usage(folder, month), "this relay")


def fleet_source(target: PgTarget) -> Source:
    """The fleet's shared event table (relay/fleetevents.py)."""
    from relay.fleetevents import fleet_records, fleet_usage

    return Source(
        lambda since: fleet_records(target, since, events=TALLIED),
        lambda month: fleet_usage(target, month),
        "every relay of the fleet",
    )


def local_records(folder: Path) -> Records:
    """The events of the files in `folder` since a time, oldest first; a file that ends
    before it (the next one begins before it) is not read."""

    def read(since: str) -> Iterator[dict[str, Any]]:
        for path in files_for(folder, since, "9999"):  # the files usage would read
            yield from _read(path, since)

    return read


def _read(path: Path, since: str) -> Iterator[dict[str, Any]]:
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return
    with fh:
        for line in fh:
            if ts_of(line) < since:  # before the window, or not an event line
                continue
            record = parse_line(line)
            if record is not None:
                yield record


def build(
    source: Source,
    folder: Path,
    policy: RelayPolicy | None,
    *,
    since: datetime,
    now: datetime | None = None,
    pricing: Pricing | None = None,
) -> dict[str, Any]:
    """The dashboard's data for the events since `since`; the queue is this host's
    (`folder`), as each relay's spool is its own."""
    limits = policy.limits if policy is not None else Limits()
    dns = policy.dns_health if policy is not None else {}  # the last `dns verify`
    return _build(source, folder, limits, dns, since, now, pricing)


def _build(
    source: Source,
    folder: Path,
    limits: Limits,
    dns: Mapping[str, Mapping[str, Any]],
    since: datetime,
    now: datetime | None = None,
    pricing: Pricing | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    start = since.astimezone(UTC).isoformat(timespec="milliseconds")
    stats = Stats(start).feed_all(source.records(start))
    usage = summary(source.usage(now.strftime("%Y-%m")), pricing or Pricing(), now)
    return snapshot(
        stats,
        now=now,
        limits=limits,
        queue=queue_view(folder),
        dns=dns,
        usage=usage,
        scope=source.scope,
    )


def build_apart(
    folder: Path, fleet: PgTarget | None, policy: RelayPolicy, since: datetime
) -> dict[str, Any]:
    """`build` in a child process (spawned, so nothing of the relay's state is shared),
    for the relay that serves the dashboard: a pass over a week of events is seconds of
    pure-Python work, which in the relay's own process would hold the interpreter from
    its SMTP sessions. Bounded by REBUILD_TIMEOUT; the child is killed past it."""
    limits, dns = policy.limits, {d: dict(v) for d, v in policy.dns_health.items()}
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        job = pool.apply_async(_build_in_child, (folder, fleet, limits, dns, since))
        result: dict[str, Any] = job.get(REBUILD_TIMEOUT)
        return result
    finally:
        pool.terminate()
        pool.join()


def _build_in_child(
    folder: Path,
    fleet: PgTarget | None,
    limits: Limits,
    dns: dict[str, dict[str, str]],
    since: datetime,
) -> dict[str, Any]:
    source = local_source(folder) if fleet is None else fleet_source(fleet)
    return _build(source, folder, limits, dns, since)


class Dashboard:
    """A cached snapshot, rebuilt on a thread when older than `max_age` seconds."""

    def __init__(
        self,
        make: Callable[[datetime], dict[str, Any]],
        window: timedelta = DEFAULT_WINDOW,
        max_age: float = 30.0,
    ) -> None:
        self.make, self.window, self.max_age = make, window, max_age
        self._lock = threading.Lock()
        self._snap: dict[str, Any] | None = None
        self._made_at = 0.0

    def current(self) -> dict[str, Any]:
        with self._lock:  # one rebuild at a time; the others wait for it and share it
            if self._snap is None or time.monotonic() - self._made_at > self.max_age:
                self._snap = self.make(datetime.now(UTC) - self.window)
                self._made_at = time.monotonic()
            return self._snap
