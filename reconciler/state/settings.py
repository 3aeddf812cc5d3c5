"""The `state:` block of a config, resolved: which backend, where, and how its secrets are
protected. Relative paths are already resolved against the config file's folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_STATE = ".postform/state.json"
DEFAULT_SCHEMA = "postform"
DEFAULT_HISTORY = 20


@dataclass(frozen=True)
class Encryption:
    passphrase_env: str | None = None
    key_file: Path | None = None

    def describe(self) -> str:
        if self.passphrase_env:
            return f"the environment variable {self.passphrase_env}"
        return f"the key file {self.key_file}"


@dataclass(frozen=True)
class StateSettings:
    backend: str  # local | postgres
    path: Path  # local: the state file
    folder: Path  # this state's local files: the relay's default data folder, policy caches
    name: str | None = None  # postgres: the state's name
    dsn_env: str | None = None  # postgres: the variable holding the connection string
    schema: str = DEFAULT_SCHEMA
    history: int = DEFAULT_HISTORY
    relay_role: str | None = None  # postgres: granted SELECT on the published policy
    encryption: Encryption | None = None
