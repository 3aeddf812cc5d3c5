"""Monthly usage from the event log: per day and sending domain, and what it would cost.

Billing model (OCI Email Delivery's, the default): every recipient of an accepted
message is one "email sent"; the first `free` emails of a calendar month (UTC) cost
nothing, the rest cost `per_thousand` per 1,000. Delivered and bounced recipients are
counted on the day their event was written; a delivery whose `accepted` line lies in a
file no longer read (rotated away, or before the month's files) counts under UNKNOWN.

The log is streamed line by line, and only the rotated files whose time span can touch
the month are opened; what is kept in memory is one small total per (day, domain) and
the sending domain of each message accepted in the files read. In a fleet the records
come from the fleet's event table instead (`usage_of` counts records from either source;
the fleet's are read from LOOKBACK_DAYS before the month, for the accepted lines).
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from relay.contract.addresses import domain_of
from relay.contract.errors import UserError
from relay.events import event_files

DEFAULT_FREE = 3100
DEFAULT_PRICE_PER_1000 = Decimal("0.085")
CURRENCY = "USD"
UNKNOWN = "(unknown)"
NO_DOMAIN = "(none)"
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_TS_PREFIX = '{"ts":"'
_OUTCOMES = ("delivered", "bounced", "deferred")
COUNTED = ("accepted", *_OUTCOMES)  # the events the report reads
LOOKBACK_DAYS = 7  # accepted lines before the month that outcomes in it may belong to


class UsageError(UserError):
    """A --month, price or data folder the usage report cannot work with."""


@dataclass(frozen=True)
class Pricing:
    free: int = DEFAULT_FREE
    per_thousand: Decimal = DEFAULT_PRICE_PER_1000

    def billable(self, emails: int) -> int:
        return max(0, emails - self.free)

    def cost(self, emails: int) -> Decimal:
        raw = Decimal(self.billable(emails)) * self.per_thousand / 1000
        return raw.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


@dataclass
class DayDomain:
    """One (day, sending domain) cell: messages accepted, their recipients (the emails
    billed), and recipients delivered, bounced and deferred that day."""

    day: str
    domain: str
    messages: int = 0
    emails: int = 0
    delivered: int = 0
    bounced: int = 0
    deferred: int = 0


@dataclass
class Usage:
    month: str
    cells: dict[tuple[str, str], DayDomain] = field(default_factory=dict)
    files_read: int = 0

    def cell(self, day: str, domain: str) -> DayDomain:
        key = (day, domain)
        if key not in self.cells:
            self.cells[key] = DayDomain(day, domain)
        return self.cells[key]

    def rows(self) -> list[DayDomain]:
        return [self.cells[k] for k in sorted(self.cells)]

    def total(self, name: str) -> int:
        return sum(int(getattr(c, name)) for c in self.cells.values())


def parse_month(text: str | None, now: datetime) -> str:
    """`YYYY-MM` as given, or the current UTC month; a month not yet begun is an error."""
    if text is None:
        return now.astimezone(UTC).strftime("%Y-%m")
    if not _MONTH.match(text):
        raise UsageError(f"--month {text!r}: expected YYYY-MM, e.g. 2026-11")
    if text > now.astimezone(UTC).strftime("%Y-%m"):
        raise UsageError(f"--month {text}: that month has not begun")
    return text


def month_bounds(month: str) -> tuple[str, str]:
    """The first instant of `month` and of the month after, as ISO text (timestamps in
    the log are UTC ISO strings, which sort as text)."""
    year, mon = int(month[:4]), int(month[5:])
    after = f"{year + 1:04d}-01" if mon == 12 else f"{year:04d}-{mon + 1:02d}"
    return f"{month}-01T00:00:00", f"{after}-01T00:00:00"


def days_in(month: str) -> int:
    return calendar.monthrange(int(month[:4]), int(month[5:]))[1]


def projected(usage: Usage, now: datetime) -> int:
    """Month-end emails: month-to-date / days begun * days in month for the current month
    (today counts as a day begun); the month's full figure for a past month."""
    emails = usage.total("emails")
    current = now.astimezone(UTC)
    if current.strftime("%Y-%m") != usage.month:
        return emails
    return int((Decimal(emails) * days_in(usage.month) / current.day).to_integral_value())


def read_usage(folder: Path, month: str) -> Usage:
    """The month's usage from the event log in `folder` (which must exist)."""
    if not folder.is_dir():
        raise UsageError(f"no relay data folder at {folder} (give --data-dir, or serve first)")
    start, end = month_bounds(month)
    usage = Usage(month)
    return usage_of(_records(files_for(folder, start, end), end, usage), month, usage)


def usage_of(records: Iterable[dict[str, Any]], month: str, usage: Usage | None = None) -> Usage:
    """The month's usage from event records in time order (from the files or the fleet's
    table): accepted lines before the month only tell the sending domain of a message;
    records from the month after are ignored."""
    start, end = month_bounds(month)
    usage = usage or Usage(month)
    domains: dict[str, str] = {}
    for record in records:
        ts = str(record.get("ts", ""))
        if ts < end:
            _count(usage, domains, record, ts >= start)
    return usage


def _count(usage: Usage, domains: dict[str, str], record: dict[str, Any], inside: bool) -> None:
    event, qid = record.get("event"), str(record.get("queue_id", ""))
    if event == "accepted":
        domain = domain_of(str(record.get("sender") or "")) or NO_DOMAIN
        domains[qid] = domain
        if inside:
            cell = usage.cell(str(record["ts"])[:10], domain)
            cell.messages += 1
            cell.emails += _int(record.get("recipients"))
    elif inside and event in _OUTCOMES:
        cell = usage.cell(str(record["ts"])[:10], domains.get(qid, UNKNOWN))
        setattr(cell, str(event), getattr(cell, str(event)) + 1)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def files_for(folder: Path, start: str, end: str) -> list[Path]:
    """The event files (oldest first) whose span can touch [start, end): a file ends
    where the next one begins, so it is skipped when the next one begins before `start`;
    files that begin at or after `end` are not read."""
    files = event_files(folder)
    firsts = [_first_ts(p) for p in files]
    chosen = []
    for i, path in enumerate(files):
        following = next((ts for ts in firsts[i + 1 :] if ts), None)
        if following is not None and following < start:
            continue
        if firsts[i] and firsts[i] >= end:
            break
        chosen.append(path)
    return chosen


def _first_ts(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                ts = ts_of(line)
                if ts:
                    return ts
    except OSError:
        pass
    return ""


def ts_of(line: str) -> str:
    """The timestamp of a log line: read from the fixed prefix the relay writes, else
    from the parsed JSON ('' for a line that is not an event)."""
    if line.startswith(_TS_PREFIX):
        return line[len(_TS_PREFIX) : line.find('"', len(_TS_PREFIX))]
    record = parse_line(line)
    return str(record.get("ts", "")) if record else ""


def parse_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _records(files: list[Path], end: str, usage: Usage) -> Iterator[dict[str, Any]]:
    """The parsed events of `files` that come before `end`, one line at a time; lines of
    other kinds (and torn or foreign lines) are skipped without parsing where possible."""
    wanted = tuple(f'"event":"{name}"' for name in COUNTED)
    for path in files:
        try:
            fh = path.open(encoding="utf-8", errors="replace")
        except OSError:
            continue
        usage.files_read += 1
        with fh:
            for line in fh:
                if ts_of(line) >= end or not any(w in line for w in wanted):
                    continue
                record = parse_line(line)
                if record is not None:
                    yield record


def now_utc() -> datetime:
    return datetime.now(UTC)
