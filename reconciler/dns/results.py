"""What checking one record against live DNS found: ok, missing or mismatch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.dns.records import Record

OK, MISSING, MISMATCH = "ok", "missing", "mismatch"


@dataclass(frozen=True)
class Result:
    record: Record
    status: str
    detail: str = ""
    found: tuple[str, ...] = field(default=())
    # For an SPF record postform merges into: the DNS lookups it costs with postform's
    # include in it (what `dns push` would publish); None for other records.
    merged_lookups: int | None = None
    # For the same records: every TXT string at the name and the set's TTL, as found, so
    # `dns records --format nsupdate` can guard its merge on what is there.
    txt_set: tuple[tuple[str, ...], int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone": self.record.zone,
            "name": self.record.name,
            "type": self.record.type,
            "purpose": self.record.purpose,
            "owner": self.record.owner,
            "expected": self.record.value,
            "status": self.status,
            "detail": self.detail,
            "found": list(self.found),
            "merged_lookups": self.merged_lookups,
        }
