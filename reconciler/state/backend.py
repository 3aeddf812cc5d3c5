"""The StateBackend interface: what plan, apply and the DNS commands need from storage.

The planner and the renderers never know which backend is in use; a new backend
implements this protocol and is added to `open.py`. Modelled on Terraform's
statemgr (storage plus a locker), with two additions: every write publishes the relay
policy built from what it stores, and observations (DNS facts) are written apart from
the applied resources so they never bump the serial.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from reconciler.state.lockinfo import LockInfo
from reconciler.state.model import State, StateVersion
from relay.contract.policy import RelayPolicy

# Builds the relay policy for a state about to be stored (with its new serial/revision).
PolicyFor = Callable[[State], RelayPolicy]


class StateBackend(Protocol):
    def describe(self) -> str:
        """Where the state lives, for messages ("state file .postform/state.json")."""
        ...

    def read(self) -> State:
        """The current state; an empty State (lineage None) when none was ever written."""
        ...

    def write(
        self, state: State, policy_for: PolicyFor | None = None, forget_history: bool = False
    ) -> State:
        """Store changed resources as serial `state.serial + 1` (a new state gets a lineage)
        and publish `policy_for(stored)`; return what was stored. Refuses (StaleStateError)
        when the stored state is no longer the one `state` was read as: a write based on a
        stale read never lands. Never leaves a damaged state behind. `forget_history` drops
        the stored earlier versions (they hold secrets in the clear)."""
        ...

    def observe(
        self, state: State, policy_for: PolicyFor | None = None, forget_history: bool = False
    ) -> State:
        """Store changed observations as revision `state.revision + 1`, same serial."""
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

    def has_history(self) -> bool:
        """Whether this backend ever held a state: one that holds none now lost it."""
        ...

    def pull(self) -> bytes | None:
        """The stored state document, as stored (secrets still sealed)."""
        ...

    def push(self, document: bytes, force: bool = False) -> State:
        """Store a state document as it is (lineage and serial kept). Refuses another
        lineage or an older serial unless `force`."""
        ...

    def publish(self, policy: RelayPolicy) -> None:
        """Make `policy` what the relays enforce."""
        ...

    def published(self) -> dict[str, Any] | None:
        """The policy document the relays see now, as stored (JSON, its secrets as they
        are stored); None when none was published or it is not JSON."""
        ...

    def policy_location(self) -> str:
        """Where relays following this backend find the policy (for messages)."""
        ...
