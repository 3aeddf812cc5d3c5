"""Which web endpoints a relay process opens: Prometheus metrics and the dashboard, on
one address (the dashboard at `/` beside `/metrics`) or each on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relay.contract.hostport import split_hostport
from relay.contract.policy import RelayPolicy
from relay.dashboard import Dashboard, build_apart
from relay.dashboardserver import WebEndpoint, is_loopback
from relay.metrics import Metrics
from relay.relayoptions import RelayOptions


def open_endpoints(
    options: RelayOptions, metrics: Metrics | None, policy: Callable[[], RelayPolicy]
) -> list[WebEndpoint]:
    """Start the endpoints `options` ask for (worker 0 only); the caller closes them."""
    if options.worker[0] != 0:
        return []
    snapshot = _dashboard(options, policy).current if options.dashboard else None
    registry = metrics.registry if metrics is not None else None
    opened = []
    own = options.dashboard_address
    if own and snapshot is not None:
        opened.append(WebEndpoint(own, snapshot, None, options.dashboard_token).start())
    if options.metrics_address and registry is not None:
        # A metrics address open to the network (for Prometheus) gets the dashboard only
        # with a token: serving it there must not widen what an existing setup exposes.
        host, _ = split_hostport(options.metrics_address)
        private = bool(options.dashboard_token) or is_loopback(host)
        shared = snapshot if not own and private else None
        try:
            web = WebEndpoint(options.metrics_address, shared, registry, options.dashboard_token)
        except OSError:  # the port is taken: the one already opened is not left serving
            for done in opened:
                done.close()
            raise
        opened.append(web.start())
    return opened


def _dashboard(options: RelayOptions, policy: Callable[[], RelayPolicy]) -> Dashboard:
    folder = options.data_dir

    def make(since: Any) -> dict[str, Any]:
        current = policy()
        # A fleet's shared event table when the relay shares a store, else this host's.
        fleet = options.pg if current.relay.store == "postgres" else None
        return build_apart(folder, fleet, current, since)

    return Dashboard(make)
