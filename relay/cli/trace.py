"""`postform relay trace QUERY`: one message's life, from acceptance to each recipient's
outcome, looked up in an index instead of a scan: the fleet's event table when the fleet
shares a store (relay/fleetevents.py; every relay's events, each line naming its relay),
else this host's event index (relay/eventindex.py). `--local` reads this host's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from relay.cli.events import cutoff_of
from relay.cli.options import DEFAULT_CONFIG, ConfigOpt, DataDirOpt, data_folder, out, site_for
from relay.contract.errors import ExitStatus, UserError
from relay.contract.policy import PolicyError
from relay.eventindex import DEFAULT_RETENTION_DAYS, EventIndex
from relay.fleetevents import RELAY_HOST, FleetEvents, fleet_target
from relay.site import RelaySite

# What each event says, for people; the JSON keeps every field.
_SHOWN = ("recipient", "host", "reply", "status", "reason", "bounce", "next_attempt", "dkim")
LocalOpt = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Read this host's event files (see --data-dir), not the fleet's shared table.",
    ),
]


class _Lookups(Protocol):
    def queue_ids(self, query: str, since: str = "") -> list[str]: ...
    def events(self, queue_id: str) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def trace(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A queue ID, a <Message-ID> or a recipient.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time, or 10m / 2h / 7d.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for tools.")] = False,
    local: LocalOpt = False,
) -> ExitStatus:
    """Show what happened to a message: accepted, signed, each delivery attempt, delivered,
    deferred, bounced, suppressed, complained about. In a fleet, on any of its relays."""
    cutoff = cutoff_of(since) or ""
    index = _lookups(site_for(ctx, config), data_dir, local)
    try:
        found = {qid: index.events(qid) for qid in index.queue_ids(query, cutoff)}
    finally:
        index.close()
    if as_json:
        doc = {"query": query, "messages": [{"queue_id": q, "events": e} for q, e in found.items()]}
        out(json.dumps(doc, indent=2) + "\n")
    else:
        out(_text(query, found))
    return ExitStatus.OK if found else ExitStatus.CHANGES


def _lookups(site: RelaySite, data_dir: Path | None, local: bool) -> _Lookups:
    """The fleet's table when the fleet shares a store, unless --local; else this host's
    index, brought up to date from its event files."""
    target = None if local else fleet_target(site)
    if target is not None:
        return FleetEvents(target)
    folder = data_folder(site, data_dir)
    if not folder.is_dir():
        raise UserError(f"no relay data folder at {folder} (see --data-dir)")
    index = EventIndex(folder, retention_days=_retention(site))
    try:
        index.update()
    except BaseException:
        index.close()
        raise
    return index


def _retention(site: RelaySite) -> float:
    """The applied relay.event_retention_days (the default when nothing readable is
    published: the index is still useful)."""
    try:
        policy = site.current()
    except PolicyError:
        policy = None
    return policy.relay.event_retention_days if policy is not None else DEFAULT_RETENTION_DAYS


def _text(query: str, found: dict[str, list[dict[str, Any]]]) -> str:
    if not found:
        return f"No message matches {query} in the indexed events.\n"
    lines = []
    for queue_id, events in found.items():
        lines.append(f"Message {queue_id}:")
        for event in events:
            parts = [f"{k}={event[k]}" for k in _SHOWN if event.get(k) is not None]
            if event.get(RELAY_HOST):  # in a fleet: the relay that wrote it
                parts.append(f"relay={event[RELAY_HOST]}")
            detail = " ".join(parts)
            name = str(event.get("event", "?"))
            lines.append(f"  {event.get('ts', '?')}  {name:<16} {detail}".rstrip())
    return "\n".join(lines) + "\n"
