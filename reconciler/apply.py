"""Walk a plan and make it so: generate keys and credentials, record the state.

Everything apply changes lives in the state, so the state is written once at
the end (by `save`, which also publishes the relay policy); if a change fails
part-way, the state is written with exactly the changes that completed before
it, and the error says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.credentials import new_credential
from reconciler.errors import ApplyFailedError
from reconciler.keys import generate_dkim_key
from reconciler.plan import Action, Change, Plan
from reconciler.state.model import Resources, State
from relay.contract.dkim import DkimStatus
from relay.contract.passwords import hash_password

_VERBS = {
    Action.CREATE: ("Creating...", "Creation complete"),
    Action.UPDATE: ("Modifying...", "Modifications complete"),
    Action.REPLACE: ("Replacing...", "Replacement complete"),
    Action.DELETE: ("Destroying...", "Destruction complete"),
}


@dataclass(frozen=True)
class IssuedCredential:
    """A password shown once: only its hash is kept in the state."""

    address: str
    user: str
    name: str
    username: str
    password: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _computed(change: Change, issued: list[IssuedCredential]) -> dict[str, Any]:
    after = change.after or {}
    if change.type == "dkim":
        private, public = generate_dkim_key(after["algorithm"])
        immediate = after.get("activation") == "immediate"
        status = DkimStatus.ACTIVE if immediate else DkimStatus.NEEDS_ATTENTION
        return {
            "private_key": private,
            "public_key": public,
            "created_at": _now(),
            "status": str(status),
        }
    if change.type == "credential":
        name = (change.name or "").split("/", 1)[1]  # credential names are USER/NAME
        username, password = new_credential(after["user"], name)
        issued.append(IssuedCredential(change.address, after["user"], name, username, password))
        return {
            "username": username,
            "password_hash": hash_password(password),
            "created_at": _now(),
        }
    return {}


def _execute(change: Change, resources: Resources, issued: list[IssuedCredential]) -> None:
    if change.action is Action.DELETE:
        resources.pop(change.address, None)
        return
    old = resources.get(change.address)
    if change.action is Action.UPDATE and old is not None:
        computed = dict(old.get("computed", {}))
        if change.type == "dkim" and (change.after or {}).get("activation") == "immediate":
            computed["status"] = str(DkimStatus.ACTIVE)
    else:
        computed = _computed(change, issued)
    resources[change.address] = {
        "type": change.type,
        "name": change.name,
        "attributes": dict(change.after or {}),
        "computed": computed,
    }


def apply_plan(
    plan: Plan,
    state: State,
    save: Callable[[State], State],
    progress: Callable[[str], None],
    keep: Callable[[list[IssuedCredential]], None] = lambda issued: None,
) -> tuple[State, list[IssuedCredential]]:
    """Apply `plan` to `state`; `save` persists and returns the written state, after
    `keep` has put the new passwords somewhere (they exist nowhere else)."""
    resources = dict(state.resources)
    issued: list[IssuedCredential] = []
    for done, change in enumerate(plan.changes):
        start_msg, end_msg = _VERBS[change.action]
        progress(f"{change.address}: {start_msg}")
        started = time.monotonic()
        try:
            _execute(change, resources, issued)
        except (Exception, KeyboardInterrupt) as exc:
            if done:
                keep(issued)
                _save(state, resources, save)
            why = str(exc) or type(exc).__name__
            raise ApplyFailedError(
                f"{change.address}: apply failed: {why}. The state records the {done} "
                "change(s) applied before it; run plan to continue.",
                issued,
            ) from exc
        progress(f"{change.address}: {end_msg} after {time.monotonic() - started:.0f}s")
    keep(issued)
    return _save(state, resources, save), issued


def _save(state: State, resources: Resources, save: Callable[[State], State]) -> State:
    return save(replace(state, resources=resources))
