"""The local backend: the state in one JSON file, the published policy beside it.

Writes are atomic (a fsync'ed temporary file renamed over the state, after the
previous state was copied to `<state>.backup` the same way), so the state path
always holds a whole state. A write checks that the file is still the one it was
based on (its serial and revision, or the very file that was read): a write from a
stale read is refused even if someone broke the lock by hand. The lock is an
flock(2) the kernel drops when its holder dies (filelock.py).

Files: `state.json`, `state.json.backup`, `state.json.lock`, and the relay policy
`state.policy.json`; all mode 0600, in a 0700 folder.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.errors import StaleStateError, StateError
from reconciler.state.backend import PolicyFor
from reconciler.state.filelock import FileLock
from reconciler.state.lockinfo import LockInfo
from reconciler.state.model import State, StateVersion
from reconciler.state.statefile import decode_state, encode_state, peek_header
from relay.contract.policy import RelayPolicy
from relay.contract.policycodec import decode_policy
from relay.contract.policyfile import write_policy_file
from relay.durable import Stamp, atomic_write, file_stamp


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def policy_path(path: Path) -> Path:
    """The relay policy beside the state: `state.json` -> `state.policy.json`."""
    return path.with_name(f"{path.stem}.policy.json")


def check_push(current: State, incoming: State, force: bool, where: str) -> None:
    """What `state push` refuses without --force: another lineage, an older serial."""
    if force or not current.exists:
        return
    if incoming.lineage != current.lineage:
        raise StateError(
            f"the pushed state has lineage {incoming.lineage}, the {where} holds lineage "
            f"{current.lineage}: it is another state. Push it with --force to replace it."
        )
    if (incoming.serial, incoming.revision) < (current.serial, current.revision):
        raise StateError(
            f"the pushed state is at serial {incoming.serial}, older than the {where} "
            f"(serial {current.serial}). Push it with --force to roll back."
        )


class LocalBackend:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.policy_file = policy_path(path)
        self._lock = FileLock(lock_path(path))
        self._seen: tuple[int, int, Stamp | None] | None = None  # (serial, revision, stamp)

    def describe(self) -> str:
        return f"state file {self.path}"

    def read(self) -> State:
        stamp = file_stamp(self.path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._seen = (0, 0, None)
            return State()
        except OSError as exc:
            raise StateError(f"cannot read state file {self.path}: {exc.strerror}") from None
        state = decode_state(raw, self.path, self._backup_hint())
        self._seen = (state.serial, state.revision, stamp)
        return state

    def _backup_hint(self) -> str:
        backup = backup_path(self.path)
        if backup.exists():
            return (
                f" The previous state is in {backup}: inspect it and copy it back if it is sound."
            )
        return " Restore it from your backups."

    def write(
        self, state: State, policy_for: PolicyFor | None = None, forget_history: bool = False
    ) -> State:
        lineage = state.lineage or str(uuid.uuid4())
        new = replace(state, lineage=lineage, serial=state.serial + 1)
        return self._store(state, new, policy_for, forget_history)

    def observe(
        self, state: State, policy_for: PolicyFor | None = None, forget_history: bool = False
    ) -> State:
        new = replace(state, revision=state.revision + 1)
        return self._store(state, new, policy_for, forget_history)

    def _store(
        self, based_on: State, new: State, policy_for: PolicyFor | None, forget: bool
    ) -> State:
        """Write `new` over `based_on`; `forget` replaces the backup too (it held secrets
        in the clear)."""
        self._check_current(based_on)
        payload = encode_state(new)
        self._replace_file(payload, backup=payload if forget else None)
        self._seen = (new.serial, new.revision, file_stamp(self.path))
        if policy_for is not None:
            self.publish(policy_for(new))
        return new

    def _replace_file(self, payload: bytes, backup: bytes | None = None) -> None:
        """Write `payload` as the state, the previous state (or `backup`) as the backup."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if backup is not None:
                atomic_write(backup_path(self.path), backup)
            elif self.path.exists():
                atomic_write(backup_path(self.path), self.path.read_bytes())
            atomic_write(self.path, payload)
        except OSError as exc:
            raise StateError(
                f"cannot write state file {self.path}: {exc.strerror}; the previous state is "
                "unchanged"
            ) from None

    def _check_current(self, state: State) -> None:
        """Refuse a write whose base is no longer what the file holds."""
        stamp = file_stamp(self.path)
        if self._seen == (state.serial, state.revision, stamp):
            return  # the very file this state was read from
        stored: tuple[int, int, str | None] = (0, 0, None)
        if stamp is not None:
            header = peek_header(self.path.read_bytes())
            if header is None:
                raise StateError(f"state file {self.path} changed and cannot be read")
            stored = (header.serial, header.revision, header.lineage)
        if stored != (state.serial, state.revision, state.lineage if stamp else None):
            raise StaleStateError(
                f"{self.describe()} changed since it was read (it is at serial {stored[0]}, "
                f"this write was based on serial {state.serial}); nothing was written. "
                "Run the command again."
            )

    @contextmanager
    def lock(self, operation: str, timeout: float) -> Iterator[LockInfo]:
        with self._lock.hold(operation, timeout) as info:
            yield info

    def force_unlock(self, lock_id: str) -> bool:
        return self._lock.force_unlock(lock_id)

    def history(self) -> list[StateVersion]:
        out = []
        for path in (self.path, backup_path(self.path)):
            try:
                header = peek_header(path.read_bytes())
            except OSError:
                continue
            if header is not None:
                out.append(
                    StateVersion(
                        header.serial, header.revision, header.lineage, header.updated_at, str(path)
                    )
                )
        return out

    def has_history(self) -> bool:
        return self.path.exists() or backup_path(self.path).exists()

    def pull(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def push(self, document: bytes, force: bool = False) -> State:
        incoming = decode_state(document, Path("the pushed state"), "")
        check_push(self.read(), incoming, force, self.describe())
        self._replace_file(document)
        self._seen = (incoming.serial, incoming.revision, file_stamp(self.path))
        return incoming

    def publish(self, policy: RelayPolicy) -> None:
        try:
            write_policy_file(self.policy_file, policy)
        except OSError as exc:
            raise StateError(
                f"cannot publish the relay policy to {self.policy_file}: {exc.strerror}"
            ) from None

    def published(self) -> dict[str, Any] | None:
        try:
            document = decode_policy(self.policy_file.read_bytes())
        except (OSError, ValueError):
            return None
        return document if isinstance(document, dict) else None

    def policy_location(self) -> str:
        return str(self.policy_file)
