"""Records `dns push` would overwrite that postform did not publish.

At names postform writes alone (a DKIM selector, `_dmarc`, the relay's SPF domain, a
return path's MX) push replaces what is there. A record of that kind is postform's when
it equals what postform wants now, a row the state says push published, what postform
wanted there when `dns verify` last looked, or a record that check found matching;
anything else belongs to someone else (another provider's DKIM key, a DMARC record
written by hand), and push refuses to overwrite it unless --force. SPF at a shared name
is merged, never overwritten, so it is not checked here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.dns import spf
from reconciler.dns.lifecycle import SEEN_OK
from reconciler.dns.lookup import Resolver
from reconciler.dns.records import DKIM, DMARC, RELAY_SPF, RP_MX, Record
from reconciler.dns.verify import key_bytes, tags
from reconciler.errors import PostformError

OWNED = (DKIM, DMARC, RELAY_SPF, RP_MX)


class ForeignRecordError(PostformError):
    """Push would overwrite records postform did not publish; nothing was sent."""


@dataclass(frozen=True)
class Foreign:
    record: Record  # what postform wants at the name
    found: str  # the other record, as published


def same_kind(record: Record, text: str) -> bool:
    """Whether a TXT string at the record's name is a record of the record's kind."""
    if record.purpose == DKIM:
        return "p=" in text
    if record.purpose == DMARC:
        return text.replace(" ", "").lower().startswith("v=dmarc1")
    return bool(spf.spf_records([text]))


def _same(record: Record, text: str, value: str) -> bool:
    if record.purpose == DKIM:
        got, want = tags(text), tags(value)
        return key_bytes(got.get("p", "")) == key_bytes(want.get("p", "")) and got.get(
            "k", "rsa"
        ) == want.get("k", "rsa")
    return " ".join(text.lower().split()) == " ".join(value.lower().split())


def _ours(
    published: Iterable[Mapping[str, str]], history: Mapping[str, Any]
) -> dict[str, set[str]]:
    """Per record key, the values postform published or wanted there."""
    out: dict[str, set[str]] = {}
    for row in published:
        out.setdefault(f"{row['name']}/{row['type']}/{row['purpose']}", set()).add(row["value"])
    for key, entry in history.items():
        if not isinstance(entry, dict):
            continue
        seen = [entry.get("value"), *entry.get(SEEN_OK, [])]
        out.setdefault(key, set()).update(v for v in seen if isinstance(v, str))
    return out


def foreign_records(
    wanted: Iterable[Record],
    published: Iterable[Mapping[str, str]],
    history: Mapping[str, Any],
    resolver: Resolver,
) -> list[Foreign]:
    """The records at names postform writes alone that are not postform's."""
    ours = _ours(published, history)
    out = []
    for record in wanted:
        if record.purpose not in OWNED:
            continue
        known = ours.get(record.key, set()) | {record.value}
        if record.type == "MX":
            live = [text for text, _ in resolver.raw(record.name, "MX")]
        else:
            live = [t for t, _ in resolver.raw(record.name, "TXT") if same_kind(record, t)]
        out += [
            Foreign(record, text)
            for text in live
            if not any(_same(record, text, value) for value in known)
        ]
    return out


def refusal(zone: str, found: list[Foreign]) -> ForeignRecordError:
    """The error naming each record, and what to do: import (DKIM) or --force."""
    lines = [
        f"refusing to push to zone {zone}: it would overwrite {len(found)} record(s) "
        "postform did not publish:"
    ]
    for f in found:
        shown = f.found if len(f.found) <= 100 else f.found[:97] + "..."
        lines.append(
            f'  {f.record.name} {f.record.type} "{shown}" ({f.record.owner} wants its own)'
        )
    dkim = [f.record.owner for f in found if f.record.purpose == DKIM]
    for owner in dict.fromkeys(dkim):
        lines.append(
            f"To adopt the published DKIM key instead of postform's: postform state rm "
            f"'{owner}', then postform import '{owner}' --private-key-file KEY.pem (the "
            "private key of that record)."
        )
    lines.append(
        "To replace them with postform's records anyway, push again with --force. Nothing was sent."
    )
    return ForeignRecordError("\n".join(lines))
