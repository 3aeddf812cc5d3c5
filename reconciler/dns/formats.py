"""Records -> the formats users feed their DNS: BIND zone fragments, JSON, octoDNS (and
nsupdate, in reconciler/dns/nsupdate.py).

Pure functions. TXT values longer than 255 bytes are split into several
character-strings (RFC 7208 3.3, RFC 6376 3.6.2.2); receivers join them.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import yaml

from reconciler.dns.records import Record

MAX_STRING = 255
FORMATS = ("bind", "json", "octodns", "nsupdate")

_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def txt_strings(value: str) -> list[str]:
    data = value.encode()
    return [data[i : i + MAX_STRING].decode() for i in range(0, len(data), MAX_STRING)] or [""]


def _quote(chunk: str) -> str:
    return '"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rdata_text(record: Record) -> str:
    """The record's data in zone-file syntax."""
    if record.type == "TXT":
        return " ".join(_quote(s) for s in txt_strings(record.value))
    return record.value


def by_zone(records: Iterable[Record]) -> dict[str, list[Record]]:
    zones: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        zones[record.zone].append(record)
    return dict(sorted(zones.items()))


def render_bind(records: Iterable[Record]) -> str:
    """Zone fragments with absolute names, one block per zone, for $INCLUDE or pasting."""
    blocks = []
    for zone, rows in by_zone(records).items():
        width = max(len(r.name) + 1 for r in rows)
        lines = [f"; postform: records for zone {zone}. Merge SPF with any existing v=spf1."]
        lines += [
            f"{(r.name + '.').ljust(width)} {r.ttl} IN {r.type} {rdata_text(r)}" for r in rows
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def records_json(records: Iterable[Record]) -> dict[str, object]:
    return {
        "format_version": "1.0",
        "records": [
            {
                "zone": r.zone,
                "name": r.name,
                "type": r.type,
                "ttl": r.ttl,
                "value": r.value,
                "strings": txt_strings(r.value) if r.type == "TXT" else None,
                "purpose": r.purpose,
                "owner": r.owner,
            }
            for r in records
        ],
    }


def render_json(records: Iterable[Record]) -> str:
    return dump_records_json(records_json(records))


def dump_records_json(document: dict[str, object]) -> str:
    return json.dumps(document, indent=2) + "\n"


def _natural(name: str) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def octodns_zone(zone: str, records: Iterable[Record]) -> str:
    """One zone as octoDNS's YamlProvider reads it (escaped_semicolons: true)."""
    nodes: dict[str, list[dict[str, object]]] = defaultdict(list)
    grouped: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        grouped[(r.name, r.type)].append(r)
    for (name, rtype), rows in grouped.items():
        relative = "" if name == zone else name[: -len(zone) - 1]
        # octoDNS's loader insists on sorted keys: ttl, type, values.
        entry: dict[str, object] = {"ttl": rows[0].ttl, "type": rtype}
        if rtype == "MX":
            entry["values"] = [_octodns_mx(r.value) for r in rows]
        else:
            entry["values"] = [r.value.replace(";", "\\;") for r in rows]
        nodes[relative].append(entry)
    ordered = {
        k: (v[0] if len(v) == 1 else v)
        for k, v in sorted(nodes.items(), key=lambda kv: _natural(kv[0]))
    }
    header = (
        f"# postform: records for zone {zone}; load with YamlProvider (escaped_semicolons: true)\n"
    )
    # libyaml's emitter (8x faster than PyYAML's at 1,000 zones) writes the apex as '':
    # as octoDNS's own examples do.
    text = yaml.dump(ordered, Dumper=_DUMPER, sort_keys=False, width=1_000_000)
    return header + "---\n" + text


def _octodns_mx(value: str) -> dict[str, object]:
    preference, exchange = value.split()
    return {"exchange": exchange, "preference": int(preference)}


def render_octodns(records: Iterable[Record]) -> str:
    return "\n".join(octodns_zone(z, rows) for z, rows in by_zone(records).items())


RENDERERS = {
    "bind": render_bind,
    "json": render_json,
    "octodns": render_octodns,
}
