"""`postform import`: adopt what already exists elsewhere (a published DKIM key, another
service's suppression list). The work is loaded when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.output import DEFAULT_CONFIG, ConfigOpt, LockTimeoutOpt, err, out
from reconciler.errors import PostformError
from relay.contract.errors import ExitStatus

SUPPRESSIONS = "suppressions"


def import_cmd(
    address: Annotated[
        str,
        typer.Argument(
            help="What to adopt: 'dkim[\"DOMAIN/SELECTOR\"]' (with --private-key-file), or "
            "suppressions (with FILE)."
        ),
    ],
    source: Annotated[
        Path | None,
        typer.Argument(help="For suppressions: the CSV export (AWS SES or OCI Email Delivery)."),
    ] = None,
    private_key_file: Annotated[
        Path | None,
        typer.Option("--private-key-file", help="The DKIM private key (PEM) already published."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="For suppressions: ses or oci (default: from the header)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="The relay's data folder.")
    ] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Adopt a DKIM key another provider publishes, or another service's suppression list."""
    if address.strip() == SUPPRESSIONS:
        if source is None or private_key_file is not None:
            raise PostformError("usage: postform import suppressions FILE.csv [--format ses|oci]")
        return _suppressions(config, source, fmt, data_dir)
    if private_key_file is None or source is not None or fmt is not None:
        raise PostformError(
            f"usage: postform import '{address}' --private-key-file KEY.pem (the private key of "
            "the DKIM record already published)"
        )
    return _dkim(config, address, private_key_file, lock_timeout)


def _dkim(config: Path, address: str, key_file: Path, lock_timeout: float) -> ExitStatus:
    from reconciler.adopt import import_dkim
    from reconciler.manager import Manager

    done = import_dkim(Manager.load(config), address, key_file, lock_timeout)
    out(
        f"Imported {done.address} ({done.algorithm}, key from {key_file}) into the state at "
        f"serial {done.serial}; it is {done.status}. The next plan shows no change for it.\n"
    )
    if done.matches_seen is False:
        err(
            f"Warning: the DKIM record the last `postform dns verify` saw at "
            f"{done.record_name} holds another public key than this private key's: "
            "check it is the right key file."
        )
    out(
        f"Its record ({done.record_name} TXT) must hold this key: `postform dns verify` "
        "checks it and then activates the selector (only ACTIVE selectors sign).\n"
    )
    return ExitStatus.OK


def _suppressions(config: Path, source: Path, fmt: str | None, data_dir: Path | None) -> ExitStatus:
    from reconciler.cli.site import resolve_site  # as `postform suppressions` finds it
    from reconciler.suppressionimport import FORMATS, import_rows, read_export

    found, rows = read_export(source, fmt)
    done = import_rows(resolve_site(config), data_dir, rows, found)
    out(
        f"Imported {done.rows} suppression(s) from {source} ({FORMATS[done.fmt]} export) into "
        f"{done.where}: {done.added} added, {done.rows - done.added} already suppressed.\n"
    )
    return ExitStatus.OK
