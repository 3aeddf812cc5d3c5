"""The local state backend: one JSON file, written atomically, never left corrupt.

Every write goes to a temporary file that is fsync'ed and renamed over the
state; the previous state is first copied to `<state>.backup` the same way, so
at every instant the state path holds either the old or the new state, whole.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.errors import StateError

STATE_FORMAT = "postform-state"
STATE_VERSION = 1


@dataclass
class State:
    lineage: str | None = None
    serial: int = 0
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    # DNS facts that are not resources: verification results and what push published.
    dns: dict[str, Any] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.lineage is not None


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


def read_state(path: Path) -> State:
    """The stored state; an empty one when the file does not exist yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return State()
    except OSError as exc:
        raise StateError(f"cannot read state file {path}: {exc.strerror}") from None
    hint = _backup_hint(path)
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


def _backup_hint(path: Path) -> str:
    backup = backup_path(path)
    if backup.exists():
        return f" The previous state is in {backup}: inspect it and copy it back if it is sound."
    return " Restore it from your backups."


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
    bad = [
        a
        for a, r in data["resources"].items()
        if not (
            isinstance(r, dict)
            and isinstance(r.get("type"), str)
            and isinstance(r.get("attributes"), dict)
            and isinstance(r.get("computed", {}), dict)
        )
    ]
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
    return State(
        data["lineage"],
        data["serial"],
        data["resources"],
        data.get("policy", {}),
        data.get("dns", {}),
    )


def write_state(path: Path, state: State) -> State:
    """Persist `state` as the next serial; returns what was written."""
    lineage = state.lineage or str(uuid.uuid4())
    new = State(lineage, state.serial + 1, state.resources, state.policy, state.dns)
    doc = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "serial": new.serial,
        "lineage": new.lineage,
        "postform_version": __version__,
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "resources": new.resources,
        "policy": new.policy,
        "dns": new.dns,
    }
    payload = json.dumps(doc, indent=1, sort_keys=True, allow_nan=False).encode() + b"\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.exists():
            atomic_write(backup_path(path), path.read_bytes())
        atomic_write(path, payload)
    except OSError as exc:
        raise StateError(
            f"cannot write state file {path}: {exc.strerror}; the previous state is unchanged"
        ) from None
    return new


def atomic_write(path: Path, payload: bytes, mode: int = 0o600) -> None:
    """Write `payload` to `path` via a fsync'ed temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
