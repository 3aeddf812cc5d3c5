"""`postform relay trace QUERY`: one message's life, from acceptance to each recipient's
outcome, looked up in the event index (relay/eventindex.py) instead of a scan."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from relay.cli.events import cutoff_of
from relay.cli.options import DEFAULT_CONFIG, ConfigOpt, DataDirOpt, data_folder, out, site_for
from relay.contract.errors import ExitStatus, UserError
from relay.eventindex import EventIndex

# What each event says, for people; the JSON keeps every field.
_SHOWN = ("recipient", "host", "reply", "status", "reason", "bounce", "next_attempt", "dkim")


def trace(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A queue ID, a <Message-ID> or a recipient.")],
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time, or 10m / 2h / 7d.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for tools.")] = False,
) -> ExitStatus:
    """Show what happened to a message: accepted, signed, each delivery attempt, delivered,
    deferred, bounced, suppressed, complained about."""
    folder = data_folder(site_for(ctx, config), data_dir)
    if not folder.is_dir():
        raise UserError(f"no relay data folder at {folder} (see --data-dir)")
    index = EventIndex(folder)
    try:
        index.update()
        found = {qid: index.events(qid) for qid in index.queue_ids(query, cutoff_of(since) or "")}
    finally:
        index.close()
    if as_json:
        doc = {"query": query, "messages": [{"queue_id": q, "events": e} for q, e in found.items()]}
        out(json.dumps(doc, indent=2) + "\n")
    else:
        out(_text(query, found))
    return ExitStatus.OK if found else ExitStatus.CHANGES


def _text(query: str, found: dict[str, list[dict[str, Any]]]) -> str:
    if not found:
        return f"No message matches {query} in the indexed events.\n"
    lines = []
    for queue_id, events in found.items():
        lines.append(f"Message {queue_id}:")
        for event in events:
            detail = " ".join(f"{k}={event[k]}" for k in _SHOWN if event.get(k) is not None)
            name = str(event.get("event", "?"))
            lines.append(f"  {event.get('ts', '?')}  {name:<16} {detail}".rstrip())
    return "\n".join(lines) + "\n"
