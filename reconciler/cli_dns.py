"""`postform dns records|verify|push` and `postform refresh`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cliutil import (
    DEFAULT_CONFIG_PATH,
    ConfigOpt,
    LockTimeoutOpt,
    NameserverOpt,
    TimeoutOpt,
    exit_two,
    out,
    reported,
)
from reconciler.config import Config, load_config
from reconciler.dns.formats import FORMATS, RENDERERS
from reconciler.dns.lifecycle import StatusChange, record_results
from reconciler.dns.lookup import DEFAULT_TIMEOUT, Resolver
from reconciler.dns.push import plan_zone, send
from reconciler.dns.records import Record, records_for
from reconciler.dns.tsig import read_key_file
from reconciler.dns.verify import OK, Result, verify
from reconciler.errors import PostformError
from reconciler.lock import state_lock
from reconciler.statefile import State, read_state, write_state

dns_app = typer.Typer(
    rich_markup_mode=None,
    help="DNS records: print, verify live, push (RFC 2136).",
    no_args_is_help=True,
)
DomainOpt = Annotated[str | None, typer.Option("--domain", help="Only this domain's zone.")]


def applied_records(cfg: Config, state: State, domain: str | None = None) -> list[Record]:
    records = records_for(state.resources.values(), cfg.dns_ttl)
    if domain is not None:
        records = [r for r in records if r.zone == domain.lower()]
        if not records:
            raise PostformError(f"no applied records in zone {domain} (see `postform dns records`)")
    return records


def _relay(state: State) -> dict[str, object]:
    return dict(state.policy.get("relay") or {})


@dns_app.command("records")
@reported
def records_cmd(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    domain: DomainOpt = None,
    fmt: Annotated[str, typer.Option("--format", help=f"One of: {', '.join(FORMATS)}.")] = "bind",
) -> None:
    """Print the records the applied state needs published."""
    if fmt not in RENDERERS:
        raise PostformError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    cfg = load_config(config)
    out(RENDERERS[fmt](applied_records(cfg, read_state(cfg.state_path), domain)))


def _check(
    cfg: Config, nameserver: str | None, timeout: float, lock_timeout: float, domain: str | None
) -> tuple[list[Result], list[StatusChange]]:
    """Verify live, then record results and DKIM status moves in the state."""
    with state_lock(cfg.state_path, "dns verify", lock_timeout):
        state = read_state(cfg.state_path)
        if not state.exists:
            raise PostformError(
                f"nothing has been applied to {cfg.state_path} yet: run `postform apply` first"
            )
        records = applied_records(cfg, state, domain)
        results = verify(records, Resolver(nameserver, timeout), _relay(state))
        new_state, moves = record_results(state, results)
        write_state(cfg.state_path, new_state)
    return results, moves


@dns_app.command("verify")
@reported
def verify_cmd(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    nameserver: NameserverOpt = None,
    domain: DomainOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> None:
    """Query live DNS for every applied record: exit 0 all ok, 2 something missing or wrong."""
    results, moves = _check(load_config(config), nameserver, timeout, lock_timeout, domain)
    if as_json:
        out(
            json.dumps(
                {
                    "results": [r.as_dict() for r in results],
                    "status_changes": [m.__dict__ for m in moves],
                },
                indent=2,
            )
            + "\n"
        )
    else:
        out(
            _results_table(results)
            + "".join(f"{m.address}: {m.before} -> {m.after}\n" for m in moves)
        )
    if any(r.status != OK for r in results):
        raise exit_two()


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


@reported
def refresh(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    nameserver: NameserverOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> None:
    """Check every applied record live and record the results (DKIM status, drift)."""
    results, moves = _check(load_config(config), nameserver, timeout, lock_timeout, None)
    bad = [r for r in results if r.status != OK]
    out(f"Refreshed {len(results)} record(s): {len(results) - len(bad)} ok, {len(bad)} not.\n")
    for r in bad:
        out(f"  {r.status}: {r.record.name} {r.record.type} ({r.record.purpose}) {r.detail}\n")
    for m in moves:
        out(f"{m.address}: {m.before} -> {m.after}\n")


@dns_app.command("push")
@reported
def push_cmd(
    server: Annotated[str, typer.Option("--server", help="Primary server HOST[:PORT].")],
    zone: Annotated[str, typer.Option("--zone", help="The zone to update.")],
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    tsig_key_file: Annotated[
        Path | None, typer.Option("--tsig-key-file", help="BIND key file (tsig-keygen).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show, do not send.")] = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    lock_timeout: LockTimeoutOpt = 0.0,
) -> None:
    """Send RFC 2136 updates so the zone holds exactly postform's records."""
    cfg = load_config(config)
    zone = zone.lower().rstrip(".")
    key = read_key_file(tsig_key_file) if tsig_key_file else None
    with state_lock(cfg.state_path, "dns push", lock_timeout):
        state = read_state(cfg.state_path)
        wanted = [
            r
            for r in records_for(state.resources.values(), cfg.dns_ttl)
            if r.name == zone or r.name.endswith("." + zone)
        ]
        published = state.dns.get("published", {}).get(zone, [])
        if not wanted and not published:
            raise PostformError(f"postform has no records for zone {zone}")
        ops = plan_zone(wanted, published, Resolver(server, timeout))
        if not ops:
            out(f"No changes: zone {zone} at {server} already holds postform's records.\n")
            return
        out(f"Update for zone {zone} at {server}:\n" + "".join(f"{op}\n" for op in ops))
        if dry_run:
            return
        send(zone, ops, server, key, timeout)
        rows = [
            {
                "name": r.name,
                "type": r.type,
                "purpose": r.purpose,
                "value": r.value,
                "ttl": str(r.ttl),
            }
            for r in wanted
        ]
        published_all = {**state.dns.get("published", {}), zone: rows}
        write_state(
            cfg.state_path,
            State(
                state.lineage,
                state.serial,
                state.resources,
                state.policy,
                {**state.dns, "published": published_all},
            ),
        )
    out(
        f"Sent {len(ops)} change(s) to {server}. Run `postform dns verify --nameserver "
        f"{server}` to check them.\n"
    )
