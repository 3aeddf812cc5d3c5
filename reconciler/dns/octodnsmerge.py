"""An octoDNS processor that merges postform's records into zones other sources fill.

postform's octodns/<zone>.yaml, listed as a second source beside a zone that already has an
apex TXT record, stops octoDNS (DuplicateRecordException): both hold the whole record. This
processor reads records.json instead and, after a zone's sources have populated it, merges:

- SPF (a domain's and its return path's ``include:``): the term goes into the name's
  existing v=spf1 value, before its ``all``/``redirect=``; nothing changes if it is there.
  With no v=spf1 value, postform's whole value joins the name's TXT record (whose other
  values and TTL are kept), or becomes a new record with postform's TTL.
- The relay's SPF (at relay.spf_domain, a name postform owns): its v=spf1 value replaces
  any other v=spf1 value there; the record's other values and TTL are kept.
- DKIM and DMARC (names postform owns): postform's record replaces any TXT record there,
  values and TTL; a warning is logged when the values differed.
- The return-path MX: added beside any MX already at the name (its TTL kept), never
  removing one, since the name may receive mail; a warning names the other exchangers.

A name never ends up with two v=spf1 values: a source that already has two is an error.
Records are matched to zones by name (``Zone.owns``), so sub-zones are respected.

Only octoDNS loads this module (``class: reconciler.dns.octodnsmerge.PostformProcessor``);
nothing else in postform imports it, as octoDNS is an optional dependency.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from octodns.processor.base import (  # type: ignore[import-untyped]
    BaseProcessor,
    ProcessorException,
)
from octodns.record import Record as OctoRecord  # type: ignore[import-untyped]

from reconciler.dns.records import DKIM, DMARC, RELAY_SPF, RP_MX, RP_SPF, SPF
from reconciler.dns.spf import merge_include, spf_records
from reconciler.plan import UNKNOWN_TEXT

log = logging.getLogger("PostformProcessor")


class PostformMergeError(ProcessorException):  # type: ignore[misc]
    """records.json cannot be read, or a zone cannot take postform's records."""


class Wanted(NamedTuple):
    """One record from records.json."""

    name: str  # fully qualified, no trailing dot
    type: str
    purpose: str
    value: str  # TXT: the whole text, semicolons not escaped; MX: "PREFERENCE HOST."
    ttl: int


def load_records(path: Path) -> list[Wanted]:
    try:
        document = json.loads(path.read_text())
        if not str(document["format_version"]).startswith("1."):
            raise ValueError(f"format_version {document['format_version']} is not 1.x")
        return [
            Wanted(r["name"].lower().rstrip("."), r["type"], r["purpose"], r["value"], r["ttl"])
            for r in document["records"]
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PostformMergeError(f"cannot read postform's records from {path}: {error}") from error


def is_spf(value: str) -> bool:
    return bool(spf_records([value]))


def _is_final(term: str) -> bool:
    lowered = term.lower()
    return lowered.lstrip("+-~?") == "all" or lowered.startswith("redirect=")


def merge_spf(existing: str, ours: str) -> str:
    """`existing` with the terms of `ours` it lacks, placed before its `all`/`redirect=`;
    `existing` itself, unchanged, when it has them all."""
    merged = existing
    for term in ours.split()[1:]:
        have = {t.lower().lstrip("+") for t in merged.split()}
        if not _is_final(term) and term.lower().lstrip("+") not in have:
            merged = merge_include(merged, term)
    return merged


def _escape(value: str) -> str:
    return value.replace(";", "\\;")


def _raw_values(record: Any) -> list[str]:
    return [str(v).replace("\\;", ";") for v in record.values]


class Nodes:
    """The records of one zone by (name, type), and the changes made to them."""

    def __init__(self, zone: Any, source: Any, lenient: bool) -> None:
        self.zone = zone
        self.source = source
        self.lenient = lenient
        self.records: dict[tuple[str, str], Any] = {(r.name, r._type): r for r in zone.records}

    def get(self, wanted: Wanted) -> Any:
        return self.records.get((self.relative(wanted), wanted.type))

    def relative(self, wanted: Wanted) -> str:
        return str(self.zone.hostname_from_fqdn(wanted.name + "."))

    def put(self, wanted: Wanted, values: list[Any], current: Any = None) -> None:
        """Replace `current` with a copy holding `values` (its TTL kept), or, without one,
        add postform's record. TXT values are given unescaped."""
        if wanted.type == "TXT":
            values = [_escape(v) for v in values]
        if current is not None:
            # What Record.copy(values=...) does in octoDNS 1.22, spelled out for older 1.x:
            # a new record from the old one's data (TTL, octodns: settings, context).
            data = current.data
            data.pop("value", None)
            data.update(type=current._type, values=values)
            name, source = current.name, current.source
        else:
            data = {"type": wanted.type, "ttl": wanted.ttl, "values": values}
            name, source = self.relative(wanted), self.source
        record = OctoRecord.new(self.zone, name, data, source=source, lenient=self.lenient)
        self.zone.add_record(record, replace=True, lenient=self.lenient)
        self.records[(record.name, record._type)] = record


def merge_spf_include(nodes: Nodes, wanted: Wanted) -> None:
    """SPF and return-path SPF: postform's include goes into the name's v=spf1 value."""
    current = nodes.get(wanted)
    if current is None:
        nodes.put(wanted, [wanted.value])
        return
    values = _raw_values(current)
    spf = [i for i, v in enumerate(values) if is_spf(v)]
    if len(spf) > 1:
        raise PostformMergeError(
            f"{wanted.name} already has {len(spf)} v=spf1 values (an SPF permerror): "
            "keep one in your source and postform will merge its include into it"
        )
    if not spf:
        values.append(wanted.value)
    else:
        merged = merge_spf(values[spf[0]], wanted.value)
        if merged == values[spf[0]]:
            return
        values[spf[0]] = merged
    nodes.put(wanted, values, current)


def replace_spf(nodes: Nodes, wanted: Wanted) -> None:
    """The relay's SPF: postform's v=spf1 value wins; other TXT values and the TTL stay."""
    current = nodes.get(wanted)
    if current is None:
        nodes.put(wanted, [wanted.value])
        return
    values = _raw_values(current)
    spf = [v for v in values if is_spf(v)]
    if spf == [wanted.value]:
        return
    if spf:
        log.warning("%s TXT: postform's %r replaces %r", wanted.name, wanted.value, spf)
    nodes.put(wanted, [v for v in values if not is_spf(v)] + [wanted.value], current)


def replace_record(nodes: Nodes, wanted: Wanted) -> None:
    """DKIM and DMARC: postform's record (value and TTL) replaces what the name has."""
    current = nodes.get(wanted)
    if current is not None:
        values = _raw_values(current)
        if values == [wanted.value] and current.ttl == wanted.ttl:
            return
        if values != [wanted.value]:
            log.warning("%s TXT: postform's %r replaces %r", wanted.name, wanted.value, values)
    nodes.put(wanted, [wanted.value])


def add_mx(nodes: Nodes, wanted: Wanted) -> None:
    """The return-path MX: added beside the name's other MX values, none removed."""
    preference, exchange = wanted.value.split()
    ours = {"exchange": exchange, "preference": int(preference)}
    current = nodes.get(wanted)
    if current is None:
        nodes.put(wanted, [ours])
        return
    others = [v.exchange for v in current.values]
    if exchange.lower() in (e.lower() for e in others):
        return
    log.warning(
        "%s MX: adding %s beside %s, which will receive some bounces too",
        wanted.name,
        exchange,
        ", ".join(others),
    )
    nodes.put(wanted, [dict(v) for v in current.values] + [ours], current)


MERGERS: dict[str, Callable[[Nodes, Wanted], None]] = {
    SPF: merge_spf_include,
    RP_SPF: merge_spf_include,
    RELAY_SPF: replace_spf,
    DKIM: replace_record,
    DMARC: replace_record,
    RP_MX: add_mx,
}


class PostformProcessor(BaseProcessor):  # type: ignore[misc]
    """Merges postform's records into each zone it processes.

    processors:
      postform:
        class: reconciler.dns.octodnsmerge.PostformProcessor
        records: .postform/dns/records.json  # relative to where octodns-sync runs
    """

    def __init__(self, name: str, records: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.path = Path(records)
        self._by_suffix: dict[str, list[Wanted]] | None = None
        self._lock = threading.Lock()  # octoDNS may process zones in threads

    def records_under(self, zone_name: str) -> list[Wanted]:
        """postform's records at or below `zone_name` (no trailing dot), read once."""
        with self._lock:
            if self._by_suffix is None:
                by_suffix: dict[str, list[Wanted]] = defaultdict(list)
                for wanted in load_records(self.path):
                    labels = wanted.name.split(".")
                    for i in range(len(labels)):
                        by_suffix[".".join(labels[i:])].append(wanted)
                self._by_suffix = dict(by_suffix)
            return self._by_suffix.get(zone_name, [])

    def process_source_zone(self, desired: Any, sources: Any, lenient: bool = False) -> Any:
        nodes = Nodes(desired, self, self.lenient or lenient)
        for wanted in self.records_under(str(desired.name).lower().rstrip(".")):
            if not desired.owns(wanted.type, wanted.name + "."):
                continue  # in a sub-zone octoDNS manages separately
            if UNKNOWN_TEXT in wanted.value:
                log.warning("%s %s: not known until apply, skipped", wanted.name, wanted.type)
                continue
            merge = MERGERS.get(wanted.purpose)
            if merge is None:
                log.warning("%s: unknown purpose %r, skipped", wanted.name, wanted.purpose)
                continue
            merge(nodes, wanted)
        return desired
