"""The relay commands' `--config`, resolved: the control plane reads the YAML's `state:`
settings and tells the relay where its policy is and where its data lives. The relay
never reads the YAML itself."""

from __future__ import annotations

from pathlib import Path

from relay.site import RelaySite


def resolve_site(config: Path) -> RelaySite:
    """From the `state:` section alone when it reads cleanly (a relay host's config may
    declare 100,000 senders it never needs); else the whole config, which reports what
    is wrong with it."""
    from reconciler.statesection import state_section

    section = state_section(config)
    if section is None:
        from reconciler.manager import Manager

        return Manager.load(config).site()
    from reconciler.config import state_settings
    from reconciler.relaysite import site_for_state
    from reconciler.secrets import StateSecrets

    settings = state_settings(config, section)
    return site_for_state(config, settings, StateSecrets(settings.encryption).passphrase())
