"""Write the records apply produces into the DNS output folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

from reconciler.dns.formats import by_zone, octodns_zone, render_bind, render_json
from reconciler.dns.records import Record
from relay.durable import atomic_write, fsync_dir


def write_outputs(folder: Path, records: list[Record]) -> list[Path]:
    """One BIND fragment per zone, records.json, octodns/<zone>.yaml; returns the files
    whose content changed (only those are written, and each folder is synced once).

    Files of zones that no longer have records are removed, but only those an earlier apply
    wrote (listed in the previous records.json): anything else in the folder is left alone.
    """
    octo = folder / "octodns"
    octo.mkdir(mode=0o755, parents=True, exist_ok=True)
    zones = by_zone(records)
    before = _zones_written(folder / "records.json")
    wanted = [(folder / "records.json", render_json(records))]
    for zone, rows in zones.items():
        wanted.append((folder / f"{zone}.zone", render_bind(rows)))
        wanted.append((octo / f"{zone}.yaml", octodns_zone(zone, rows)))
    written = []
    for path, text in wanted:
        payload = text.encode()
        if _holds(path, payload):
            continue
        atomic_write(path, payload, mode=0o644, sync_dir=False)
        written.append(path)
    removed = False
    for zone in before - zones.keys():  # only files an earlier apply wrote
        for path in (folder / f"{zone}.zone", octo / f"{zone}.yaml"):
            if path.exists():
                path.unlink()
                removed = True
    for changed in sorted({p.parent for p in written} | ({folder, octo} if removed else set())):
        fsync_dir(changed)
    return written


def _holds(path: Path, payload: bytes) -> bool:
    """The file exists with exactly this content (and the mode apply gives it)."""
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_mode & 0o777 != 0o644:
                return False
            return f.read(len(payload) + 1) == payload
    except OSError:
        return False


def _zones_written(records_json: Path) -> set[str]:
    try:
        data = json.loads(records_json.read_text())
        return {r["zone"] for r in data.get("records", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
