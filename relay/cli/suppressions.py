"""`postform suppressions list | add | remove | export`: the runtime suppression list."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Protocol

import typer

from relay.cli.options import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    data_folder,
    out,
    site_for,
)
from relay.contract.addresses import normalize_address
from relay.contract.errors import ExitStatus, UserError
from relay.contract.suppression import REASONS, parse_reason
from relay.events import EVENT_FILE, EventLog
from relay.site import RelaySite
from relay.store.interfaces import Suppression
from relay.store.sqlite import EmbeddedStore

ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Filter by reason.")]


class _Suppressions(Protocol):
    def add(self, address: str, reason: str, *, note: str | None = None) -> bool: ...
    def remove(self, address: str, why: str) -> Suppression | None: ...
    def list(self, reason: str | None = None) -> list[Suppression]: ...


class _Store(Protocol):
    @property
    def suppressions(self) -> _Suppressions: ...
    def close(self) -> None: ...


def _open(site: RelaySite, folder: Path) -> _Store:
    """The list the relays follow: the fleet's shared one when the applied policy says
    relay.store.backend: postgres, else this host's embedded store."""
    policy = site.current()
    if policy is not None and policy.relay.store == "postgres":
        if site.pg is None:
            raise UserError("relay.store is postgres, but the state is not (state.backend)")
        from relay.store.pgdirect import DirectStore

        return DirectStore(site.pg)
    return EmbeddedStore(folder)


def _store(ctx: typer.Context, config: ConfigOpt, data_dir: DataDirOpt) -> _Store:
    site = site_for(ctx, config)
    return _open(site, data_folder(site, data_dir))


def _when(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds")


def list_cmd(
    ctx: typer.Context,
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> ExitStatus:
    """Learned and manually added suppressions (declared ones are in `postform show`)."""
    store = _store(ctx, config, data_dir)
    rows = store.suppressions.list(reason)
    store.close()
    if as_json:
        out(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        return ExitStatus.OK
    for r in rows:
        detail = r.reply or r.note or ""
        out(f"{r.address}\t{r.reason}\t{_when(r.created)}\t{r.queue_id or '-'}\t{detail}\n")
    out(f"{len(rows)} suppressed address(es).\n")
    return ExitStatus.OK


def add_cmd(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The address to suppress.")],
    reason: Annotated[str, typer.Option("--reason", help=", ".join(REASONS))] = "MANUAL",
    note: Annotated[str | None, typer.Option("--note", help="Why, for the record.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
) -> ExitStatus:
    """Suppress an address now (the relay refuses it at RCPT at once)."""
    normal = normalize_address(address)
    if normal is None:
        raise UserError(f"{address!r} is not a valid email address")
    try:
        why = parse_reason(reason)
    except ValueError:
        raise UserError(f"--reason {reason!r}: expected one of {', '.join(REASONS)}") from None
    store = _store(ctx, config, data_dir)
    added = store.suppressions.add(normal, why, note=note)
    store.close()
    out(f"Suppressed {normal} ({why}).\n" if added else f"{normal} was already suppressed.\n")
    return ExitStatus.OK


def remove_cmd(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="The address to release.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log); required.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
) -> ExitStatus:
    """Release a suppressed address; the reason is recorded (and logged as an event)."""
    if not reason.strip():
        raise UserError("--reason must say why the address is released")
    site = site_for(ctx, config)
    folder = data_folder(site, data_dir)
    normal = normalize_address(address) or address
    store = _open(site, folder)
    removed = store.suppressions.remove(normal, reason)
    store.close()
    if removed is None:
        raise UserError(f"{normal} is not on the runtime suppression list")
    EventLog(path=folder / EVENT_FILE).emit(
        "unsuppressed", recipient=removed.address, previous_reason=removed.reason, why=reason
    )
    out(f"Released {removed.address} (was {removed.reason}).\n")
    return ExitStatus.OK


def export_cmd(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
) -> ExitStatus:
    """Export the runtime list."""
    if fmt not in ("csv", "json"):
        raise UserError(f"--format {fmt!r}: expected csv or json")
    store = _store(ctx, config, data_dir)
    rows = store.suppressions.list()
    store.close()
    if fmt == "json":
        out(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        return ExitStatus.OK
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["address", "reason", "created", "queue_id", "reply", "note"])
    for r in rows:
        writer.writerow(
            [r.address, r.reason, _when(r.created), r.queue_id or "", r.reply or "", r.note or ""]
        )
    out(buffer.getvalue())
    return ExitStatus.OK
