"""The relay commands' `--config`, resolved: the control plane reads the YAML's `state:`
settings and tells the relay where its policy is and where its data lives. The relay
never reads the YAML itself."""

from __future__ import annotations

from pathlib import Path

from relay.site import RelaySite


def resolve_site(config: Path) -> RelaySite:
    from reconciler.manager import Manager

    return Manager.load(config).site()
