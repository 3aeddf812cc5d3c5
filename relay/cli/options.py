"""What the relay's commands share: options, output, and the site from the root."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from relay.contract.errors import UserError
from relay.contract.policy import PolicyError, PolicyUnavailable, RelayPolicy
from relay.site import RelaySite

DEFAULT_CONFIG = Path("postform.yaml")
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The config file.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="The relay's data folder.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
MxNameserverOpt = Annotated[
    str | None, typer.Option("--nameserver", help="DNS server for MX lookups, HOST[:PORT].")
]
MetricsOpt = Annotated[
    str | None, typer.Option("--metrics", help="Serve Prometheus metrics on HOST:PORT.")
]
DashboardOpt = Annotated[
    bool,
    typer.Option(
        "--dashboard/--no-dashboard",
        help="Serve the deliverability dashboard at / on the --metrics address.",
    ),
]
DashboardAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--dashboard-address",
        help="Serve the dashboard on this HOST:PORT instead. Beyond loopback it needs a "
        "bearer token in $POSTFORM_DASHBOARD_TOKEN.",
    ),
]
OutboundPortOpt = Annotated[
    int,
    typer.Option(
        "--outbound-port",
        help="The port destination MX hosts listen on (25; another only for tests and "
        "private networks).",
        min=1,
        max=65535,
    ),
]
MtaStsPortOpt = Annotated[
    int,
    typer.Option(
        "--mta-sts-port",
        help="The HTTPS port destinations serve MTA-STS policies on (443; another only for tests).",
        min=1,
        max=65535,
    ),
]

SiteResolver = Callable[[Path], RelaySite]


def site_for(ctx: typer.Context, config: Path) -> RelaySite:
    resolve = ctx.find_root().obj
    if not callable(resolve):
        raise UserError("the relay commands run under `postform`, which resolves --config")
    site: RelaySite = resolve(config)
    return site


def serving_policy(site: RelaySite) -> RelayPolicy:
    """The policy a relay starts with: the published one, or the copy this host cached
    when the source cannot be reached (the relay then says so and keeps trying)."""
    try:
        return site.source().load()
    except PolicyUnavailable as exc:
        if exc.cached is None:
            raise
        return exc.cached


def data_folder(site: RelaySite, override: Path | None) -> Path:
    """The data folder by the site's one rule, for commands that do not serve: the
    applied policy's relay.data_dir when a policy has been published."""
    if override is not None:
        return override
    try:
        policy = site.current()
    except PolicyError as exc:
        raise UserError(f"cannot tell where the relay keeps its data: {exc}") from None
    return site.data_dir(policy.relay.data_dir if policy else None)


def out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
