"""`postform relay events`: the event log, oldest first, optionally followed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from relay.cli.options import DEFAULT_CONFIG, ConfigOpt, DataDirOpt, data_folder, out, site_for
from relay.contract.errors import ExitStatus, UserError
from relay.events import EVENT_FILE, event_files

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def events(
    ctx: typer.Context,
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time, or 10m / 2h / 1d.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
) -> ExitStatus:
    """Print the relay's event log (JSON lines), oldest first."""
    folder = data_folder(site_for(ctx, config), data_dir)
    cutoff = cutoff_of(since)
    for path in event_files(folder):
        with path.open() as fh:
            for line in fh:
                if _after(line, cutoff):
                    out(line)
    if follow:
        _follow(folder / EVENT_FILE, cutoff)
    return ExitStatus.OK


def cutoff_of(since: str | None) -> str | None:
    """The ISO timestamp `--since` means (events carry UTC timestamps that sort as text)."""
    if not since:
        return None
    if since[:-1].isdigit() and since[-1] in _UNITS:
        moment = datetime.fromtimestamp(time.time() - int(since[:-1]) * _UNITS[since[-1]], UTC)
        return moment.isoformat(timespec="milliseconds")
    try:
        return datetime.fromisoformat(since).astimezone(UTC).isoformat(timespec="milliseconds")
    except ValueError:
        raise UserError(f"--since {since!r}: expected an ISO time or 10m, 2h, 1d") from None


def _after(line: str, cutoff: str | None) -> bool:
    if cutoff is None:
        return True
    try:
        return str(json.loads(line).get("ts", "")) >= cutoff
    except ValueError:
        return False


def _follow(path: Path, cutoff: str | None) -> None:
    position = path.stat().st_size if path.exists() else 0
    while True:
        time.sleep(0.5)
        if not path.exists():
            continue
        if path.stat().st_size < position:
            position = 0  # rotated
        with path.open() as fh:
            fh.seek(position)
            for line in fh:
                if _after(line, cutoff):
                    out(line)
            position = fh.tell()
