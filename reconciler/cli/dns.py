"""`postform dns records | verify | push` and `postform refresh` (loaded on demand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.output import (
    DEFAULT_CONFIG,
    ConfigOpt,
    JsonOpt,
    LockTimeoutOpt,
    NameserverOpt,
    TimeoutOpt,
    err,
    out,
)
from reconciler.dns.formats import FORMATS, RENDERERS
from reconciler.dns.lifecycle import StatusChange, spf_limit_warnings
from reconciler.dns.lookup import DEFAULT_TIMEOUT
from reconciler.dns.nsupdate import render_nsupdate
from reconciler.dns.operations import applied_records, check_live, push_zone
from reconciler.dns.results import OK, Result
from reconciler.errors import PostformError
from reconciler.manager import Manager
from relay.contract.errors import ExitStatus

dns_app = typer.Typer(
    rich_markup_mode=None,
    help="DNS records: print, verify live, push (RFC 2136).",
    no_args_is_help=True,
)
DomainOpt = Annotated[str | None, typer.Option("--domain", help="Only this domain's zone.")]


@dns_app.command("records")
def records_cmd(
    config: ConfigOpt = DEFAULT_CONFIG,
    domain: DomainOpt = None,
    fmt: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")] = "bind",
) -> ExitStatus:
    """Print the records the applied state needs published."""
    if fmt not in FORMATS:
        raise PostformError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    manager = Manager.load(config)
    state = manager.state()
    records = applied_records(manager, state, domain)
    for warning in spf_limit_warnings(state, records):
        err(f"Warning: {warning}\n")
    if fmt == "nsupdate":  # merges into what the last live check found
        out(render_nsupdate(records, state.dns.get("verification", {})))
    else:
        out(RENDERERS[fmt](records))
    return ExitStatus.OK


@dns_app.command("verify")
def verify_cmd(
    config: ConfigOpt = DEFAULT_CONFIG,
    nameserver: NameserverOpt = None,
    domain: DomainOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Query live DNS for every applied record: exit 0 all ok, 2 something missing or wrong."""
    results, moves = check_live(Manager.load(config), nameserver, timeout, lock_timeout, domain)
    if as_json:
        doc = {
            "results": [r.as_dict() for r in results],
            "status_changes": [m.__dict__ for m in moves],
        }
        out(json.dumps(doc, indent=2) + "\n")
    else:
        out(_results_table(results) + _moves(moves))
    return ExitStatus.OK if all(r.status == OK for r in results) else ExitStatus.CHANGES


def _moves(moves: list[StatusChange]) -> str:
    return "".join(f"{m.address}: {m.before} -> {m.after}\n" for m in moves)


def _results_table(results: list[Result]) -> str:
    rows = [
        (r.status.upper(), f"{r.record.name} {r.record.type}", r.record.purpose, r.detail)
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)] if rows else [0, 0, 0]
    lines = [
        f"{a.ljust(widths[0])}  {b.ljust(widths[1])}  {c.ljust(widths[2])}  {d}".rstrip()
        for a, b, c, d in rows
    ]
    for r in results:
        if r.status != OK and r.found:
            lines.append(f"  {r.record.name}: found {' | '.join(r.found)}")
    ok = sum(r.status == OK for r in results)
    lines.append(f"{ok} of {len(results)} record(s) ok.")
    return "\n".join(lines) + "\n"


def refresh(
    config: ConfigOpt = DEFAULT_CONFIG,
    nameserver: NameserverOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    lock_timeout: LockTimeoutOpt = 0.0,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 2 when a record is not ok (missing, drifted)."
        ),
    ] = False,
) -> ExitStatus:
    """Check every applied record live and record the results (DKIM status, drift)."""
    results, moves = check_live(Manager.load(config), nameserver, timeout, lock_timeout, None)
    bad = [r for r in results if r.status != OK]
    out(f"Refreshed {len(results)} record(s): {len(results) - len(bad)} ok, {len(bad)} not.\n")
    for r in bad:
        out(f"  {r.status}: {r.record.name} {r.record.type} ({r.record.purpose}) {r.detail}\n")
    out(_moves(moves))
    zones = sorted({r.record.zone for r in bad})
    if zones:
        push = ", ".join(f"`postform dns push --server PRIMARY --zone {z}`" for z in zones)
        out(
            f"Publish them ({push}, or what `postform dns records` prints), then run "
            "`postform refresh` again.\n"
        )
    return ExitStatus.CHANGES if detailed_exitcode and bad else ExitStatus.OK


@dns_app.command("push")
def push_cmd(
    server: Annotated[str, typer.Option("--server", help="Primary server HOST[:PORT].")],
    zone: Annotated[str, typer.Option("--zone", help="The zone to update.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    tsig_key_file: Annotated[
        Path | None, typer.Option("--tsig-key-file", help="BIND key file (tsig-keygen).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, do not send.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite records postform did not publish.")
    ] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> ExitStatus:
    """Send RFC 2136 updates so the zone holds exactly postform's records."""
    outcome = push_zone(
        Manager.load(config),
        server,
        zone,
        tsig_key_file,
        dry_run=dry_run,
        force=force,
        timeout=timeout,
        lock_timeout=lock_timeout,
    )
    for cut, records in outcome.elsewhere.items():
        names = sorted({r.name for r in records})
        hint = f"push them with --zone {cut.zone}" if cut.served else "publish them there"
        out(
            f"Not in zone {outcome.zone}: {len(records)} record(s) at {', '.join(names)} are "
            f"{cut.describe()}; {hint}.\n"
        )
    if not outcome.ops:
        out(f"No changes: zone {outcome.zone} at {server} already holds postform's records.\n")
        return ExitStatus.OK
    out(f"Update for zone {outcome.zone} at {server}:\n" + "".join(f"{op}\n" for op in outcome.ops))
    if outcome.sent:
        out(
            f"Sent {len(outcome.ops)} change(s) to {server}. Run `postform dns verify "
            f"--nameserver {server}` to check them.\n"
        )
    return ExitStatus.OK
