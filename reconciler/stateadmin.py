"""Administering a stored state: copy it out and in (between backends, or back from a
saved copy), change the passphrase its secrets are sealed with, forget resources
(`state rm`) and rename them (`state mv`).

rm and mv change what postform manages, never DNS or a relay directly: they write the
state as apply does (under the lock, serial + 1, the previous version kept), and that
write republishes the relay policy built from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from reconciler.dns.records import records_for
from reconciler.errors import PostformError, StateError
from reconciler.manager import Manager
from reconciler.names import NAME
from reconciler.policy import DKIM_STATUS, policy_for
from reconciler.resources import address as make_address
from reconciler.state.model import State
from reconciler.stateaddress import parse_address
from relay.contract.sealing import Sealer, credential_context, is_sealed

MOVABLE = ("user", "credential")


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


def canonical(text: str) -> str:
    rtype, name = parse_address(text)
    return make_address(rtype, name)


def _read_existing(manager: Manager) -> State:
    state = manager.read()
    if not state.exists:
        raise StateError(f"the {manager.backend.describe()} holds no state yet")
    return state


def _credentials_of(state: State, user: str) -> list[str]:
    return sorted(
        a
        for a, r in state.resources.items()
        if r.get("type") == "credential" and r["attributes"].get("user") == user
    )


def remove(
    manager: Manager, addresses: Sequence[str], lock_timeout: float
) -> tuple[State, list[str]]:
    """Forget `addresses` (a user's credentials with it); (stored state, what went).
    The DNS observations of what went are forgotten too: a record postform pushed for it
    is left in DNS and is no longer postform's (push will not delete or replace it)."""
    wanted = list(dict.fromkeys(canonical(a) for a in addresses))
    with manager.backend.lock("state rm", lock_timeout):
        state = _read_existing(manager)
        unknown = [a for a in wanted if a not in state.resources]
        if unknown:
            raise PostformError(
                f"no resource {', '.join(unknown)} in the {manager.backend.describe()} (see "
                "`postform state list`); nothing was removed"
            )
        gone = list(wanted)
        for a in wanted:
            if state.resources[a]["type"] == "user":
                creds = _credentials_of(state, state.resources[a]["name"])
                gone += [c for c in creds if c not in gone]
        resources = {a: r for a, r in state.resources.items() if a not in gone}
        dns = _forget_observations(state, set(gone), manager.config.dns_ttl)
        stored = manager.write(replace(state, resources=resources, dns=dns))
    return stored, gone


def _forget_observations(state: State, gone: set[str], ttl: int) -> dict[str, Any]:
    keys = {r.key for r in records_for(state.resources.values(), ttl) if r.owner in gone}
    dns = dict(state.dns)
    if DKIM_STATUS in dns:
        dns[DKIM_STATUS] = {a: s for a, s in dns[DKIM_STATUS].items() if a not in gone}
    if "verification" in dns:
        dns["verification"] = {k: e for k, e in dns["verification"].items() if k not in keys}
    if "published" in dns:
        dns["published"] = {
            zone: [r for r in rows if f"{r['name']}/{r['type']}/{r['purpose']}" not in keys]
            for zone, rows in dns["published"].items()
        }
    return dns


def move(
    manager: Manager, old: str, new: str, lock_timeout: float
) -> tuple[State, list[tuple[str, str]]]:
    """Rename a user (its credentials move with it) or a credential, keeping their
    computed values (usernames, password hashes): no password changes. (stored state,
    [(old, new)] in the order they moved)."""
    source, target = canonical(old), canonical(new)
    rtype, old_name, new_name = _check_move(source, target)
    with manager.backend.lock("state mv", lock_timeout):
        state = _read_existing(manager)
        if source not in state.resources:
            raise PostformError(
                f"no resource {source} in the {manager.backend.describe()} (see `postform "
                "state list`); nothing was moved"
            )
        pairs = {source: target}
        if rtype == "user":
            for cred in _credentials_of(state, old_name):
                kept = state.resources[cred]["name"].split("/", 1)[1]
                pairs[cred] = make_address("credential", f"{new_name}/{kept}")
        else:
            _check_user(state, new_name.split("/", 1)[0], target)
        taken = [b for b in pairs.values() if b in state.resources]
        if taken:
            raise PostformError(
                f"{', '.join(taken)} is already in the state: state mv does not overwrite; "
                "nothing was moved"
            )
        resources = _moved_resources(manager, state, pairs)
        stored = manager.write(replace(state, resources=resources))
    return stored, list(pairs.items())


def _check_move(source: str, target: str) -> tuple[str, str, str]:
    """(type, old name, new name) of a move state mv allows; PostformError otherwise."""
    stype, sname = parse_address(source)
    ttype, tname = parse_address(target)
    if stype != ttype:
        raise PostformError(
            f"cannot move {source} to {target}: a resource keeps its type (a {stype} is "
            f"not a {ttype})"
        )
    if stype not in MOVABLE:
        raise PostformError(
            f"state mv renames users and credentials (keeping their password hashes), not "
            f"{stype}s: use `postform state rm` and apply (or import) instead"
        )
    parts = (tname or "").split("/") if stype == "credential" else [tname or ""]
    if len(parts) != (2 if stype == "credential" else 1) or not all(
        NAME.fullmatch(p) for p in parts
    ):
        shape = 'credential["USER/NAME"]' if stype == "credential" else 'user["NAME"]'
        raise PostformError(f"{target} is not a valid name: write {shape} (letters, digits, _.-)")
    if source == target:
        raise PostformError(f"{source} is already called that: nothing to move")
    return stype, sname or "", tname or ""


def _check_user(state: State, user: str, target: str) -> None:
    if make_address("user", user) not in state.resources:
        raise PostformError(
            f'cannot move to {target}: user["{user}"] is not in the state (move or apply the '
            "user first); nothing was moved"
        )


def _moved_resources(
    manager: Manager, state: State, pairs: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The resources with each moved one at its new address, the order kept, and each
    sealed password hash opened (the write seals it again, bound to its new address)."""
    sealer = _opener(manager, state, pairs)
    out: dict[str, dict[str, Any]] = {}
    for address, res in state.resources.items():
        if address not in pairs:
            out[address] = res
            continue
        _, name = parse_address(pairs[address])
        moved = {**res, "name": name, "computed": dict(res.get("computed", {}))}
        if res["type"] == "credential":
            user, cred = (name or "").split("/", 1)
            moved["attributes"] = {**res["attributes"], "user": user}
            held = moved["computed"].get("password_hash")
            if sealer is not None and is_sealed(held):
                old_user, old_cred = res["name"].split("/", 1)
                context = credential_context(old_user, old_cred)
                moved["computed"]["password_hash"] = sealer.open(held, context)
        out[pairs[address]] = moved
    return out


def _opener(manager: Manager, state: State, pairs: dict[str, str]) -> Sealer | None:
    sealed = [
        a for a in pairs if is_sealed(state.resources[a].get("computed", {}).get("password_hash"))
    ]
    if not sealed or state.sealing is None:
        return None
    passphrase = manager.secrets.passphrase()
    if passphrase is None:
        raise PostformError(
            f"{sealed[0]}'s password hash is encrypted and bound to its address: state mv "
            f"needs the passphrase ({manager.secrets.missing() or 'state.encryption'}) to "
            "seal it again at the new one. Nothing was moved."
        )
    return Sealer.from_header(state.sealing, passphrase, "the state's secrets")
