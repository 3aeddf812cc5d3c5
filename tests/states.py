"""Reading what apply stored, the way the product does: through the local backend."""

from __future__ import annotations

from pathlib import Path

from reconciler.state.local import LocalBackend, policy_path
from reconciler.state.model import State
from relay.contract.policy import RelayPolicy
from relay.contract.policyfile import read_policy_file


def read_state(path: Path) -> State:
    return LocalBackend(path).read()


def read_policy(state_path: Path) -> RelayPolicy:
    """The relay policy published beside the state at `state_path`."""
    return read_policy_file(policy_path(state_path))
