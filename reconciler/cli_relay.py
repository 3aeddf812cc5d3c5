"""`postform relay serve`: run the SMTP relay on the applied state."""

from __future__ import annotations

import contextlib
import os
import ssl
from pathlib import Path
from typing import Annotated

import typer

from reconciler import cli_ops
from reconciler.cliutil import (
    DEFAULT_CONFIG_PATH,
    ConfigOpt,
    MetricsOpt,
    MxNameserverOpt,
    reported,
)
from reconciler.config import load_config
from reconciler.errors import PostformError
from relay import supervisor
from relay.datalock import data_lock
from relay.events import EventLog
from relay.policy import PolicyError, read_policy
from relay.server import Listener, Relay
from relay.tlsconfig import self_signed as make_self_signed

relay_app = typer.Typer(
    rich_markup_mode=None,
    help="The SMTP relay that enforces the applied state.",
    no_args_is_help=True,
)


def _beside(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


@relay_app.command("serve")
@reported
def serve(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    listen: Annotated[
        list[str] | None,
        typer.Option("--listen", help="HOST:PORT[/starttls|/tls]; repeat for several."),
    ] = None,
    self_signed: Annotated[
        bool, typer.Option("--self-signed", help="Make a throwaway certificate (trials only).")
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Spool and counters folder.")
    ] = None,
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
) -> None:
    """Serve SMTP submission (TLS + AUTH PLAIN) for the applied state; JSON logs on stderr."""
    cfg = load_config(config)
    base = cfg.file.resolve().parent
    try:
        policy = read_policy(cfg.state_path)
        for text in listen or []:
            Listener.parse(text)
    except (PolicyError, ValueError) as exc:
        raise PostformError(str(exc)) from None
    folder = data_dir or (
        _beside(base, policy.data_dir) if policy.data_dir else cfg.state_path.parent / "relay"
    )
    if self_signed:
        cert, key = make_self_signed(policy.hostname, folder / "tls")
        EventLog().emit(
            "warning",
            cert=str(cert),
            message="using a self-signed certificate: for local trials only",
        )
        tls: tuple[Path, Path] | None = (cert, key)
    elif policy.tls:
        tls = (_beside(base, policy.tls["cert"]), _beside(base, policy.tls["key"]))
    else:
        raise PostformError(
            "no TLS certificate: set relay.tls {cert, key} in the config, or "
            "run with --self-signed for a local trial"
        )

    def make(index: int, count: int) -> Relay:
        return Relay(
            state_path=cfg.state_path,
            data_dir=folder,
            listen=listen,
            tls_files=tls,
            grace=grace,
            worker=(index, count),
            deliver=delivery,
            nameserver=nameserver,
            metrics_address=metrics,
        )

    os.umask(0o077)  # spool, SQLite (and its WAL), logs: readable by this user only
    try:
        with contextlib.ExitStack() as held:
            held.enter_context(data_lock(folder, "serve"))
            if delivery:
                held.enter_context(data_lock(folder, "deliver"))
            code = supervisor.serve(make, workers, folder / "spool")
    except PolicyError as exc:
        raise PostformError(str(exc)) from None
    except ssl.SSLError as exc:
        raise PostformError(f"cannot use the TLS certificate or key: {exc}") from None
    except OSError as exc:
        raise PostformError(f"cannot start the relay: {exc}") from None
    raise typer.Exit(code)


relay_app.command("deliver")(reported(cli_ops.deliver))
relay_app.command("status")(reported(cli_ops.status))
relay_app.command("events")(reported(cli_ops.events))
