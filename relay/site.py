"""A relay host's site: where its policy comes from and where it keeps its data.

The relay's commands get a RelaySite from whoever resolved their `--config` (the root
command line builds it from the YAML's `state:` settings): a local policy file beside
a local state, or the policy table of a PostgreSQL state. The relay never reads the
YAML's resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from relay.contract.policy import PolicyMissing, RelayPolicy
from relay.policysource import PolicySource
from relay.store.pgruntime import PgTarget


@dataclass(frozen=True)
class RelaySite:
    source: Callable[[], PolicySource]  # a new source each call (each holds its own state)
    base: Path  # relative paths in the policy (TLS files, data_dir) are relative to this
    default_data_dir: Path  # the data folder when the applied policy names none
    pg: PgTarget | None = None  # the state's database (a shared store lives there too)

    def path(self, value: str) -> Path:
        target = Path(value)
        return target if target.is_absolute() else self.base / target

    def data_dir(self, applied: str | None, override: Path | None = None) -> Path:
        """The one rule for the relay's data folder, used by every command that touches it
        (serve, deliver, status, events, suppressions, plan): --data-dir, else the applied
        relay.data_dir, else the site's default. The applied value, not the YAML's: an
        edit takes effect when it is applied, for every command at once."""
        if override is not None:
            return override
        if applied:
            return self.path(applied)
        return self.default_data_dir

    def current(self) -> RelayPolicy | None:
        """The published policy, or None when nothing was published yet."""
        try:
            return self.source().load()
        except PolicyMissing:
            return None
