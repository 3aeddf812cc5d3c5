"""`postform relay serve`: run the SMTP relay on the applied policy."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from relay.cli.options import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DashboardAddressOpt,
    DashboardOpt,
    DataDirOpt,
    MetricsOpt,
    MtaStsPortOpt,
    MxNameserverOpt,
    OutboundPortOpt,
    serving_policy,
    site_for,
)
from relay.contract.errors import ExitStatus, UserError
from relay.contract.hostport import Listener, split_hostport
from relay.contract.policy import RelayPolicy
from relay.dashboardserver import TOKEN_ENV, check_exposure
from relay.datalock import data_lock
from relay.events import EVENT_FILE, EventLog
from relay.site import RelaySite

if TYPE_CHECKING:  # imported when the command runs: aiosmtpd is slow to import
    from relay.relayoptions import RelayOptions


def serve(
    ctx: typer.Context,
    config: ConfigOpt = DEFAULT_CONFIG,
    listen: Annotated[
        list[str] | None,
        typer.Option("--listen", help="HOST:PORT[/starttls|/tls]; repeat for several."),
    ] = None,
    self_signed: Annotated[
        bool, typer.Option("--self-signed", help="Make a throwaway certificate (trials only).")
    ] = False,
    data_dir: DataDirOpt = None,
    grace: Annotated[
        float, typer.Option("--grace", help="Seconds SIGTERM waits for transactions.", min=0)
    ] = 30.0,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes sharing the ports.", min=1)
    ] = 1,
    delivery: Annotated[
        bool, typer.Option("--delivery/--no-delivery", help="Also run the delivery worker.")
    ] = True,
    nameserver: MxNameserverOpt = None,
    metrics: MetricsOpt = None,
    outbound_port: OutboundPortOpt = 25,
    mta_sts_port: MtaStsPortOpt = 443,
    dashboard: DashboardOpt = True,
    dashboard_address: DashboardAddressOpt = None,
) -> ExitStatus:
    """Serve SMTP submission (TLS + AUTH PLAIN) for the applied state; JSON logs on stderr."""
    site = site_for(ctx, config)
    _check_addresses(listen or [], metrics)
    token = _dashboard_token(dashboard, dashboard_address)
    policy = serving_policy(site)
    folder = site.data_dir(policy.relay.data_dir, data_dir)
    from relay.relayoptions import RelayOptions

    options = RelayOptions(
        data_dir=folder,
        tls_files=_tls_files(site, policy, folder, self_signed),
        listen=tuple(listen or ()),
        deliver=delivery,
        nameserver=nameserver,
        outbound_port=outbound_port,
        mta_sts_port=mta_sts_port,
        metrics_address=metrics,
        # With several workers, each counts into a shared folder and the scrape sums them.
        metrics_dir=folder / "metrics" if metrics and workers > 1 else None,
        dashboard=dashboard,
        dashboard_address=dashboard_address,
        dashboard_token=token,
        pg=site.pg,
        grace=grace,
    )
    return _run(site, options, workers)


def _run(site: RelaySite, options: RelayOptions, workers: int) -> ExitStatus:
    """Hold the data folder and serve, in `workers` processes."""
    from relay import supervisor
    from relay.connections import raise_open_files_limit
    from relay.memory import release_big_blocks
    from relay.server import Relay

    os.umask(0o077)  # spool, SQLite (and its WAL), logs: readable by this user only
    release_big_blocks()  # big messages' memory goes back to the system when done
    raise_open_files_limit()  # connections are capped below it (relay.sessions)
    if options.metrics_dir is not None:
        from relay.metrics import prepare_multiprocess

        prepare_multiprocess(options.metrics_dir)

    def make(index: int, count: int) -> Relay:
        return Relay(site.source(), replace(options, worker=(index, count)))

    folder = options.data_dir
    log = EventLog(path=folder / EVENT_FILE)
    try:
        with contextlib.ExitStack() as held:
            held.enter_context(data_lock(folder, "serve"))
            if options.deliver:
                held.enter_context(data_lock(folder, "deliver"))
            exit_hook = _on_exit(options.metrics_dir)
            code = supervisor.serve(make, workers, folder / "spool", log, exit_hook)
    except ssl.SSLError as exc:
        raise UserError(f"cannot use the TLS certificate or key: {exc}") from None
    except OSError as exc:
        raise UserError(f"cannot start the relay: {exc}") from None
    return ExitStatus(code)


def _on_exit(metrics_dir: Path | None) -> Callable[[int], None] | None:
    if metrics_dir is None:
        return None
    from relay.metrics import worker_exited

    return lambda pid: worker_exited(pid, metrics_dir)


def _dashboard_token(wanted: bool, address: str | None) -> str | None:
    """The dashboard's bearer token from the environment; refused early when the
    dashboard would be served beyond loopback without one."""
    token = os.environ.get(TOKEN_ENV) or None
    if wanted and address:
        try:
            check_exposure(address, token)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return token


def _check_addresses(listen: list[str], metrics: str | None) -> None:
    try:
        for text in listen:
            Listener.parse(text)
        if metrics:
            split_hostport(metrics)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _tls_files(
    site: RelaySite, policy: RelayPolicy, folder: Path, self_signed: bool
) -> tuple[Path, Path]:
    if self_signed:
        from relay.tlsconfig import self_signed as make_self_signed

        cert, key = make_self_signed(policy.relay.hostname, folder / "tls")
        EventLog().emit(
            "warning",
            cert=str(cert),
            message="using a self-signed certificate: for local trials only",
        )
        return cert, key
    if policy.relay.tls is not None:
        return site.path(policy.relay.tls.cert), site.path(policy.relay.tls.key)
    raise UserError(
        "no TLS certificate: set relay.tls {cert, key} in the config, or "
        "run with --self-signed for a local trial"
    )
