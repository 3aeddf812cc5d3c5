"""Where a config's relays find their policy and keep their data: the RelaySite the
relay's commands get, built from the YAML's `state:` settings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from reconciler.config import Config
from reconciler.state.local import policy_path
from reconciler.state.settings import StateSettings
from relay.policysource import FilePolicySource, PolicySource
from relay.site import RelaySite
from relay.store.pgruntime import PgTarget


def relay_site(config: Config, passphrase: bytes | None) -> RelaySite:
    """`passphrase` opens the policy's secrets (relays need them to sign and to check
    passwords)."""
    return site_for_state(config.file, config.state, passphrase)


def site_for_state(
    config_file: Path, settings: StateSettings, passphrase: bytes | None
) -> RelaySite:
    """The site from the `state:` settings alone (all a relay command needs)."""
    source: Callable[[], PolicySource]
    pg = None
    if settings.backend == "postgres":
        from relay.pgsource import PgPolicySource

        assert settings.name is not None
        cache = settings.folder / f"{settings.name}.policy.cache.json"
        pg = PgTarget(settings.dsn_env, settings.schema, settings.name)
        source = functools.partial(
            PgPolicySource, settings.dsn_env, settings.schema, settings.name, cache, passphrase
        )
    else:
        source = functools.partial(FilePolicySource, policy_path(settings.path), passphrase)
    return RelaySite(
        source=source,
        base=config_file.resolve().parent,
        default_data_dir=settings.folder / "relay",
        pg=pg,
    )
