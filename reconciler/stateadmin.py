"""Administering a stored state: copy it out and in (between backends, or back from a
saved copy), and change the passphrase its secrets are sealed with."""

from __future__ import annotations

from reconciler.errors import StateError
from reconciler.manager import Manager
from reconciler.policy import policy_for
from reconciler.state.model import State


def rekey(manager: Manager, new_passphrase: bytes, lock_timeout: float) -> State:
    """Open every secret with the current passphrase and seal it under the new one;
    relays need the new passphrase to open the policy published now."""
    with manager.backend.lock("state rekey", lock_timeout):
        state = manager.read()
        if not state.exists:
            raise StateError(f"the {manager.backend.describe()} holds no state to rekey")
        return manager.backend.write(manager.secrets.rekey(state, new_passphrase), policy_for)


def pull(manager: Manager) -> bytes:
    document = manager.backend.pull()
    if document is None:
        raise StateError(f"the {manager.backend.describe()} holds no state")
    return document


def push(manager: Manager, document: bytes, force: bool, lock_timeout: float) -> State:
    """Store a state document as it is (from `state pull` of another backend), then
    publish its relay policy."""
    with manager.backend.lock("state push", lock_timeout):
        stored = manager.backend.push(document, force)
        manager.backend.publish(policy_for(stored))
    return stored
