"""Where a relay gets its policy: a `PolicySource` loads the published document and
says cheaply whether a new version may be there (PolicyHolder, policyholder.py,
follows it)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from relay.contract.policy import RelayPolicy
from relay.contract.policyfile import read_policy_file
from relay.durable import Stamp, file_stamp


class PolicySource(Protocol):
    def describe(self) -> str: ...

    def load(self) -> RelayPolicy:
        """The current document; PolicyError when there is none or it cannot be used."""
        ...

    def changed(self) -> bool:
        """Whether a new version may be there since the last load (cheap, no I/O beyond a
        stat or a notification check)."""
        ...


class FilePolicySource:
    """The policy file the local state backend publishes beside the state."""

    def __init__(self, path: Path, passphrase: bytes | None = None) -> None:
        self.path = path
        self.passphrase = passphrase
        self._stamp: Stamp | None = None

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> RelayPolicy:
        # The stamp is taken before reading, and kept even if the read fails: a damaged
        # file is reported once, and the next change is read again.
        self._stamp = file_stamp(self.path)
        return read_policy_file(self.path, self.passphrase)

    def changed(self) -> bool:
        return file_stamp(self.path) != self._stamp
