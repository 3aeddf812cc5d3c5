"""The local state file's format: JSON with format, version, serial, lineage, resources
and dns. Reading refuses anything damaged, naming where, and never guesses."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.errors import StateError
from reconciler.state.model import State

STATE_FORMAT = "postform-state"
STATE_VERSION = 1


def decode_state(raw: bytes, path: Path, hint: str) -> State:
    """Parse the bytes of a state file; StateError (with `hint` on recovery) if damaged."""
    if not raw.strip():
        raise StateError(
            f"state file {path} is empty (truncated?); postform will not overwrite it.{hint}"
        )
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f" at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise StateError(
            f"state file {path} is corrupt{where}; postform will not overwrite it.{hint}"
        ) from None
    return _from_json(path, data, hint)


def _from_json(path: Path, data: Any, hint: str) -> State:
    ok = (
        isinstance(data, dict)
        and data.get("format") == STATE_FORMAT
        and isinstance(data.get("serial"), int)
        and isinstance(data.get("lineage"), str)
        and isinstance(data.get("resources"), dict)
    )
    if not ok:
        raise StateError(
            f"{path} is not a postform state file (format, serial, lineage or "
            f"resources missing); postform will not overwrite it.{hint}"
        )
    bad = [a for a, r in data["resources"].items() if not _well_formed(r)]
    if bad:
        raise StateError(
            f"state file {path} is damaged: resource {bad[0]} lacks type, "
            f"attributes or computed ({len(bad)} resource(s) affected); postform "
            f"will not overwrite it.{hint}"
        )
    if data.get("version") != STATE_VERSION:
        raise StateError(
            f"state file {path} has version {data.get('version')!r}; this postform "
            f"reads version {STATE_VERSION}"
        )
    # A "policy" object (postform 0.1 kept the relay policy here) is dropped: the policy
    # is published on its own now.
    revision = data.get("revision", 0)
    if not isinstance(revision, int) or isinstance(data["serial"], bool) or data["serial"] < 0:
        raise StateError(f"state file {path} has a damaged serial or revision{hint}")
    sealing = data.get("sealing")
    if sealing is not None and not isinstance(sealing, dict):
        raise StateError(f"state file {path} has a damaged sealing header{hint}")
    return State(
        data["lineage"], data["serial"], data["resources"], data.get("dns", {}), revision, sealing
    )


def _well_formed(res: Any) -> bool:
    return (
        isinstance(res, dict)
        and isinstance(res.get("type"), str)
        and isinstance(res.get("attributes"), dict)
        and isinstance(res.get("computed", {}), dict)
    )


def encode_state(state: State) -> bytes:
    doc: dict[str, Any] = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "serial": state.serial,
        "revision": state.revision,
        "lineage": state.lineage,
        "postform_version": __version__,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "resources": state.resources,
        "dns": state.dns,
    }
    if state.sealing is not None:
        doc["sealing"] = state.sealing
    return json.dumps(doc, indent=1, sort_keys=True, allow_nan=False).encode() + b"\n"


@dataclass(frozen=True)
class Header:
    serial: int
    revision: int
    lineage: str
    updated_at: str


def peek_header(raw: bytes) -> Header | None:
    """What identifies a stored state document's version, or None if it is unreadable."""
    try:
        data = json.loads(raw)
        return Header(
            int(data["serial"]),
            int(data.get("revision", 0)),
            str(data["lineage"]),
            str(data.get("updated_at", "?")),
        )
    except (ValueError, KeyError, TypeError):
        return None
