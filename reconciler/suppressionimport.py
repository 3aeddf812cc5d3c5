"""`postform import suppressions FILE`: a suppression list exported from AWS SES or OCI
Email Delivery, into the relay's runtime suppression list.

Those lists are what bounces and complaints feed at the other service, so they go
where the relay's bounces go (the list `postform suppressions` manages: this host's
relay.sqlite, or the fleet's shared list in PostgreSQL when relay.store is postgres),
not into the YAML: declared suppressions are hand-written policy, and the relay refuses
both kinds at RCPT alike.

Shapes (the header names compare without case, "-", "_" or spaces):
* SES (`aws sesv2 list-suppressed-destinations`, as CSV): EmailAddress, Reason
  (BOUNCE | COMPLAINT), LastUpdateTime. SES only suppresses hard bounces: BOUNCE is
  HARDBOUNCE here.
* OCI (`oci email suppression list`, as CSV): emailAddress, reason (OCI's vocabulary,
  postform's too: HARDBOUNCE, SOFTBOUNCE, COMPLAINT, MANUAL, UNSUBSCRIBE, UNKNOWN),
  timeCreated; other columns (id, compartmentId, errorDetail, ...) are ignored.
* No header: ADDRESS,REASON[,TIME] per line (SES's bulk-import file).

Every row is checked before anything is written; one bad row (named by its line) and
nothing is imported. The rows go in one transaction, and an address already suppressed
keeps its entry, so importing the same file again adds nothing."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import PostformError
from relay.contract.addresses import normalize_address
from relay.contract.suppression import REASONS, SuppressionReason
from relay.site import RelaySite

MAX_PROBLEMS = 20
SES_REASONS = {"BOUNCE": SuppressionReason.HARDBOUNCE, "COMPLAINT": SuppressionReason.COMPLAINT}
FORMATS = {"ses": "AWS SES", "oci": "OCI Email Delivery"}
_TIME_COLUMNS = ("lastupdatetime", "timecreated")


class SuppressionFileError(PostformError):
    """A suppression export that cannot be imported; nothing was imported."""


@dataclass(frozen=True)
class Row:
    line: int
    address: str
    reason: str  # postform's (OCI's) vocabulary
    note: str


@dataclass(frozen=True)
class Outcome:
    rows: int
    added: int
    fmt: str
    where: str


def _column(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def parse_export(text: str, source: str, fmt: str | None = None) -> tuple[str, list[Row]]:
    """(format, rows) of an export; SuppressionFileError listing every bad row."""
    if fmt is not None and fmt not in FORMATS:
        raise SuppressionFileError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    records = [(n, cells) for n, cells in _lines(text, source) if any(c.strip() for c in cells)]
    if not records:
        raise SuppressionFileError(f"{source} holds no suppressions")
    columns = _header(records[0][1], source)
    if columns is None:
        columns = {"emailaddress": 0, "reason": 1, "time": 2}
    else:
        records = records[1:]
        fmt = fmt or ("ses" if "lastupdatetime" in columns else None)
        fmt = fmt or ("oci" if "timecreated" in columns else None)
    fmt = fmt or _by_vocabulary(records, columns["reason"])
    rows, problems = [], []
    for line, cells in records:
        try:
            rows.append(_row(line, cells, columns, fmt))
        except ValueError as exc:
            problems.append(f"{source}:{line}: {exc}")
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        raise SuppressionFileError(
            "\n".join([*shown, *([f"... and {more} more"] if more else [])])
            + f"\n{len(problems)} bad row(s) in {source}: nothing was imported."
        )
    return fmt, rows


def _lines(text: str, source: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    out = []
    try:
        for cells in reader:
            out.append((reader.line_num, cells))
    except csv.Error as exc:
        raise SuppressionFileError(
            f"{source}:{reader.line_num}: not CSV ({exc}); nothing was imported"
        ) from None
    return out


def _header(cells: list[str], source: str) -> dict[str, int] | None:
    """Column positions when `cells` is a header row (it names the address column)."""
    names = [_column(c) for c in cells]
    if "emailaddress" not in names and "email" not in names:
        if any("@" in c for c in cells):
            return None
        raise SuppressionFileError(
            f"{source}: the first line is neither a header naming EmailAddress and Reason "
            f"(SES's or OCI's export) nor ADDRESS,REASON: {','.join(cells)[:120]!r}"
        )
    columns = {name: i for i, name in reversed(list(enumerate(names)))}
    columns.setdefault("emailaddress", columns.get("email", -1))
    if "reason" not in columns:
        raise SuppressionFileError(f"{source}: the header has no Reason column")
    columns["time"] = next((columns[c] for c in _TIME_COLUMNS if c in columns), -1)
    return columns


def _by_vocabulary(records: list[tuple[int, list[str]]], at: int) -> str:
    """A file without a telling header: SES's when a reason is BOUNCE (not OCI's word)."""
    reasons = {cells[at].strip().upper() for _, cells in records if len(cells) > at}
    return "ses" if "BOUNCE" in reasons else "oci"


def _cell(cells: list[str], at: int) -> str:
    return cells[at].strip() if 0 <= at < len(cells) else ""


def _row(line: int, cells: list[str], columns: dict[str, int], fmt: str) -> Row:
    given, said = _cell(cells, columns["emailaddress"]), _cell(cells, columns["reason"])
    if not given:
        raise ValueError("no email address")
    address = normalize_address(given)
    if address is None:
        raise ValueError(f"{given!r} is not a valid email address")
    reason = _reason(said, fmt)
    when = _time(_cell(cells, columns["time"]))
    note = f"imported from {FORMATS[fmt]}: {said.upper()}" + (f" at {when}" if when else "")
    return Row(line, address, reason, note)


def _reason(said: str, fmt: str) -> str:
    upper = said.upper()
    if fmt == "ses":
        if upper not in SES_REASONS:
            raise ValueError(f"reason {said!r}: SES's are {' or '.join(SES_REASONS)}")
        return str(SES_REASONS[upper])
    if upper not in REASONS:
        raise ValueError(f"reason {said!r}: OCI's are {', '.join(REASONS)}")
    return upper


def _time(text: str) -> str:
    """An export's time as ISO 8601 UTC ('' when the row has none): Unix seconds (SES's
    API) or RFC 3339 (the AWS CLI's and OCI's)."""
    if not text:
        return ""
    try:
        when = datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"time {text!r} is neither RFC 3339 nor Unix seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def read_export(path: Path, fmt: str | None) -> tuple[str, list[Row]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise SuppressionFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise SuppressionFileError(f"{path} is not UTF-8 text ({exc.reason})") from None
    return parse_export(text, str(path), fmt)


def import_rows(site: RelaySite, data_dir: Path | None, rows: list[Row], fmt: str) -> Outcome:
    """Add `rows` to the runtime list the relays follow, all or none; how many were new."""
    from relay.cli.options import data_folder

    policy = site.current()
    if policy is not None and policy.relay.store == "postgres":
        if site.pg is None:
            raise PostformError("relay.store is postgres, but the state is not (state.backend)")
        added = _into_postgres(site, rows)
        return Outcome(len(rows), added, fmt, "the fleet's shared suppression list")
    folder = data_folder(site, data_dir)
    return Outcome(len(rows), _into_sqlite(folder, rows), fmt, f"{folder}/relay.sqlite")


def _into_sqlite(folder: Path, rows: list[Row]) -> int:
    from relay.store.sqlite import EmbeddedStore

    try:
        store = EmbeddedStore(folder)
    except (OSError, sqlite3.Error) as exc:
        raise PostformError(f"cannot open the suppression list in {folder}: {exc}") from None
    try:
        store.db.execute("BEGIN IMMEDIATE")
        try:
            added = sum(store.suppressions.add(r.address, r.reason, note=r.note) for r in rows)
        except BaseException:
            store.db.execute("ROLLBACK")
            raise
        store.db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise PostformError(
            f"the suppression list in {folder}: nothing was imported: {exc}"
        ) from None
    finally:
        store.close()
    return added


def _into_postgres(site: RelaySite, rows: list[Row]) -> int:
    import psycopg

    from relay.pgconnect import DatabaseError, connect
    from relay.store import pgsql

    target: Any = site.pg
    conn = connect(target.dsn_env, autocommit=True, purpose="postform import suppressions")
    try:
        with conn.transaction():
            return sum(
                pgsql.add_suppression(
                    conn, target.schema, target.tenant, r.address, r.reason, note=r.note
                )
                for r in rows
            )
    except psycopg.Error as exc:
        text = str(exc).strip().splitlines()
        raise DatabaseError(
            f"the shared suppression list: nothing was imported: {text[0] if text else exc}"
        ) from None
    finally:
        conn.close()
