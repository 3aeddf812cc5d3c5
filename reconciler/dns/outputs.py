"""Write the records apply produces into the DNS output folder."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.dns.formats import by_zone, octodns_zone, render_bind, render_json
from reconciler.dns.records import Record
from relay.durable import atomic_write


def write_outputs(folder: Path, records: list[Record]) -> list[Path]:
    """One BIND fragment per zone, records.json, octodns/<zone>.yaml; returns what was written.

    Files of zones that no longer have records are removed, but only those an earlier apply
    wrote (listed in the previous records.json): anything else in the folder is left alone.
    """
    octo = folder / "octodns"
    octo.mkdir(mode=0o755, parents=True, exist_ok=True)
    zones = by_zone(records)
    before = _zones_written(folder / "records.json")
    written = [folder / "records.json"]
    atomic_write(written[0], render_json(records).encode(), mode=0o644)
    for zone, rows in zones.items():
        for path, text in (
            (folder / f"{zone}.zone", render_bind(rows)),
            (octo / f"{zone}.yaml", octodns_zone(zone, rows)),
        ):
            atomic_write(path, text.encode(), mode=0o644)
            written.append(path)
    for zone in before - zones.keys():  # only files an earlier apply wrote
        (folder / f"{zone}.zone").unlink(missing_ok=True)
        (octo / f"{zone}.yaml").unlink(missing_ok=True)
    return written


def _zones_written(records_json: Path) -> set[str]:
    try:
        data = json.loads(records_json.read_text())
        return {r["zone"] for r in data.get("records", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return set()
