"""The state's secrets at rest (`state.encryption`): sealing what apply makes.

Secrets stay in their stored form in the control plane: sealed values are copied from
the state into the relay policy without being opened, so only the commands that make a
secret (apply creating DKIM keys or credentials), turn encryption on, or change the
passphrase (`state rekey`) need it. Relays need it to sign and to check passwords.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from reconciler.state.model import State
from reconciler.state.settings import Encryption
from relay.contract.sealing import (
    Sealer,
    SealingError,
    credential_context,
    dkim_context,
    is_sealed,
    read_passphrase,
)

# (resource type, computed field, context of a resource) for every secret a state holds.
SECRET_FIELDS: tuple[tuple[str, str, Callable[[dict[str, Any]], str]], ...] = (
    (
        "dkim",
        "private_key",
        lambda r: dkim_context(r["attributes"]["domain"], r["attributes"]["selector"]),
    ),
    (
        "credential",
        "password_hash",
        lambda r: credential_context(r["attributes"]["user"], r["name"].split("/", 1)[1]),
    ),
)


def secrets_of(state: State) -> Iterator[tuple[str, str, str, Any]]:
    """(address, field, context, stored value) of every secret in the state."""
    for address, res in state.resources.items():
        for rtype, field, context in SECRET_FIELDS:
            if res.get("type") == rtype and field in res.get("computed", {}):
                yield address, field, context(res), res["computed"][field]


class StateSecrets:
    def __init__(self, encryption: Encryption | None) -> None:
        self.encryption = encryption

    @property
    def configured(self) -> bool:
        return self.encryption is not None

    def passphrase(self) -> bytes | None:
        if self.encryption is None:
            return None
        return read_passphrase(self.encryption.passphrase_env, self.encryption.key_file)

    def missing(self) -> str | None:
        """What to set, when encryption is configured and the passphrase is not there."""
        if self.encryption is None or self.passphrase() is not None:
            return None
        return self.encryption.describe()

    def seal(self, state: State) -> State:
        """`state` with every secret in the clear sealed (needs the passphrase only when
        there is one to seal), under the state's own header or a new one."""
        if self.encryption is None:
            return state
        clear = [s for s in secrets_of(state) if not is_sealed(s[3])]
        if not clear:
            return state
        passphrase = self.passphrase()
        if passphrase is None:
            raise SealingError(
                f"{len(clear)} secret(s) must be encrypted before they are stored (new DKIM "
                f"keys or credentials, or a state encrypted for the first time): set "
                f"{self.encryption.describe()}. Nothing was changed."
            )
        sealer = self._sealer(state, passphrase)
        resources = dict(state.resources)
        for address, field, context, value in clear:
            res = resources[address]
            computed = {**res["computed"], field: sealer.seal(value, context)}
            resources[address] = {**res, "computed": computed}
        return replace(state, resources=resources, sealing=sealer.header)

    def _sealer(self, state: State, passphrase: bytes) -> Sealer:
        if state.sealing is None:
            return Sealer.new(passphrase)
        return Sealer.from_header(state.sealing, passphrase, "the state's secrets")

    def rekey(self, state: State, new_passphrase: bytes) -> State:
        """Every secret opened with the current passphrase and sealed under a new header
        made from `new_passphrase`."""
        opener = None
        if state.sealing is not None:
            old = self.passphrase()
            if old is None:
                raise SealingError("state rekey needs the current passphrase too (it opens them)")
            opener = Sealer.from_header(state.sealing, old, "the state")
        sealer = Sealer.new(new_passphrase)
        resources = dict(state.resources)
        for address, field, context, value in secrets_of(state):
            clear = opener.open(value, context) if opener and is_sealed(value) else value
            res = resources[address]
            computed = {**res["computed"], field: sealer.seal(clear, context)}
            resources[address] = {**res, "computed": computed}
        return replace(state, resources=resources, sealing=sealer.header)
