"""Write the records apply produces into the DNS output folder."""

from __future__ import annotations

from pathlib import Path

from reconciler.dns.formats import by_zone, octodns_zone, render_bind, render_json
from reconciler.dns.records import Record
from reconciler.statefile import atomic_write


def write_outputs(folder: Path, records: list[Record]) -> list[Path]:
    """One BIND fragment per zone, records.json, octodns/<zone>.yaml; returns what was written.

    Zone files of zones that no longer have records are removed: the folder is postform's.
    """
    octo = folder / "octodns"
    octo.mkdir(mode=0o755, parents=True, exist_ok=True)
    zones = by_zone(records)
    written = [folder / "records.json"]
    atomic_write(written[0], render_json(records).encode(), mode=0o644)
    for zone, rows in zones.items():
        for path, text in (
            (folder / f"{zone}.zone", render_bind(rows)),
            (octo / f"{zone}.yaml", octodns_zone(zone, rows)),
        ):
            atomic_write(path, text.encode(), mode=0o644)
            written.append(path)
    for stale in [*folder.glob("*.zone"), *octo.glob("*.yaml")]:
        if stale not in written:
            stale.unlink()
    return written
