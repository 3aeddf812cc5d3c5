"""Write the records apply produces into the DNS output folder."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from reconciler.dns.formats import (
    by_zone,
    dump_records_json,
    octodns_zone,
    records_json,
    render_bind,
)
from reconciler.dns.records import Record
from relay.durable import atomic_write, fsync_dir


def write_outputs(folder: Path, records: list[Record]) -> list[Path]:
    """One BIND fragment per zone, records.json, octodns/<zone>.yaml; returns the files
    whose content changed (only those are written, and each folder is synced once).

    A zone whose records are those the previous records.json lists, and whose files nobody
    touched since (not newer than records.json, which is written last), is not even
    rendered again: at 1,000 domains rendering was most of an apply that changed one
    sender. Files of zones that no longer have records are removed, but only those an
    earlier apply wrote (listed in the previous records.json): anything else in the folder
    is left alone.
    """
    octo = folder / "octodns"
    octo.mkdir(mode=0o755, parents=True, exist_ok=True)
    record_file = folder / "records.json"
    document = records_json(records)
    previous, stamp = _previous(record_file)
    rows = _by_zone(document)
    earlier = _by_zone(previous) if previous is not None else {}
    written: list[Path] = []
    rerendered = False
    for zone, zone_records in by_zone(records).items():
        for path, render in (
            (folder / f"{zone}.zone", render_bind),
            (octo / f"{zone}.yaml", functools.partial(octodns_zone, zone)),
        ):
            if earlier.get(zone) == rows[zone] and _untouched(path, stamp):
                continue
            rerendered = True
            if _put(path, render(zone_records).encode()):
                written.append(path)
    removed = False
    for zone in earlier.keys() - rows.keys():  # only files an earlier apply wrote
        for path in (folder / f"{zone}.zone", octo / f"{zone}.yaml"):
            if path.exists():
                path.unlink()
                removed = True
    if previous != document or rerendered or not _untouched(record_file, None):
        payload = dump_records_json(document).encode()
        if _put(record_file, payload, force=rerendered):  # last: it marks a complete write
            written.append(record_file)
    for changed in sorted({p.parent for p in written} | ({folder, octo} if removed else set())):
        fsync_dir(changed)
    return written


def _put(path: Path, payload: bytes, force: bool = False) -> bool:
    """Write `payload` unless the file already holds it (and `force` is off)."""
    if not force and _holds(path, payload):
        return False
    atomic_write(path, payload, mode=0o644, sync_dir=False)
    return True


def _holds(path: Path, payload: bytes) -> bool:
    """The file exists with exactly this content (and the mode apply gives it)."""
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_mode & 0o777 != 0o644:
                return False
            return f.read(len(payload) + 1) == payload
    except OSError:
        return False


def _untouched(path: Path, stamp: int | None) -> bool:
    """The file is there with apply's mode and, given `stamp`, not newer than it."""
    try:
        status = path.stat()
    except OSError:
        return False
    return status.st_mode & 0o777 == 0o644 and (stamp is None or status.st_mtime_ns <= stamp)


def _previous(record_file: Path) -> tuple[dict[str, Any] | None, int | None]:
    """The previous records.json and its modification time, when it can be read."""
    try:
        stamp = record_file.stat().st_mtime_ns
        data = json.loads(record_file.read_text())
    except (OSError, ValueError):
        return None, None
    return (data, stamp) if isinstance(data, dict) else (None, None)


def _by_zone(document: dict[str, Any]) -> dict[str, list[Any]]:
    zones: dict[str, list[Any]] = {}
    records = document.get("records")
    for row in records if isinstance(records, list) else []:
        if isinstance(row, dict) and isinstance(row.get("zone"), str):
            zones.setdefault(row["zone"], []).append(row)
    return zones
