"""The StateBackend interface: what plan, apply and the DNS commands need from storage.

The planner and the renderers never know which backend is in use; a new backend
implements this protocol and is added to `open.py`. Modelled on Terraform's
statemgr (storage plus a locker).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from reconciler.state.lockinfo import LockInfo
from reconciler.state.model import State, StateVersion
from relay.contract.policy import RelayPolicy


class StateBackend(Protocol):
    def describe(self) -> str:
        """Where the state lives, for messages ("state file .postform/state.json")."""
        ...

    def read(self) -> State:
        """The current state; an empty State (lineage None) when none was ever written."""
        ...

    def write(self, state: State) -> State:
        """Store `state` as serial `state.serial + 1` and return what was stored. Refuses
        (StaleStateError) when the stored serial is no longer `state.serial`: a write based
        on a stale read never lands. Never leaves a damaged state behind."""
        ...

    def lock(self, operation: str, timeout: float) -> AbstractContextManager[LockInfo]:
        """Hold the state's lock, waiting up to `timeout` seconds (StateLockedError naming
        the holder otherwise). A holder that dies releases it."""
        ...

    def force_unlock(self, lock_id: str) -> bool:
        """Break the lock `lock_id` (held by a process that hangs); whether its holder was
        still running."""
        ...

    def history(self) -> list[StateVersion]:
        """Stored versions, newest first."""
        ...

    def publish(self, policy: RelayPolicy) -> None:
        """Make `policy` what the relays enforce."""
        ...

    def published(self) -> RelayPolicy | None:
        """The policy the relays see now; None when none was published or it is unreadable."""
        ...

    def policy_location(self) -> str:
        """What a relay is pointed at to follow this backend's policy."""
        ...
