"""`postform relay report`: the deliverability dashboard as one self-contained HTML file
(to mail to a team), as JSON, or as a short summary for a terminal."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from relay.cli.events import cutoff_of
from relay.cli.options import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    data_folder,
    out,
    site_for,
)
from relay.cli.trace import LocalOpt
from relay.contract.errors import ExitStatus, UserError
from relay.contract.policy import PolicyError
from relay.dashboard import build, fleet_source, local_source
from relay.dashboardhtml import pct, render
from relay.fleetevents import fleet_target


def report(
    ctx: typer.Context,
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    since: Annotated[str, typer.Option("--since", help="ISO time, or 24h / 7d / 30d.")] = "7d",
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the dashboard to this HTML file.")
    ] = None,
    as_json: JsonOpt = False,
    local: LocalOpt = False,
) -> ExitStatus:
    """How deliverability went: per hour and day, per sending domain, bounce and complaint
    rates against the providers' thresholds, limits, queue, DNS health and usage."""
    site = site_for(ctx, config)
    folder = data_folder(site, data_dir)
    if not folder.is_dir():
        raise UserError(f"no relay data folder at {folder} (see --data-dir)")
    try:
        policy = site.current()
    except PolicyError:
        policy = None  # the figures need no policy; the limits show their defaults
    start = datetime.fromisoformat(cutoff_of(since) or since).astimezone(UTC)
    target = None if local else fleet_target(site)
    source = local_source(folder) if target is None else fleet_source(target)
    snap = build(source, folder, policy, since=start)
    if html is not None:
        _write(html, render(snap))
        out(f"Wrote {html} ({snap['totals']['accepted']} messages since {snap['since'][:16]}).\n")
    elif as_json:
        out(json.dumps(snap, indent=2) + "\n")
    else:
        out(_text(snap))
    return ExitStatus.OK


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a temporary file beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def _text(snap: dict[str, Any]) -> str:
    t, lv = snap["totals"], snap["levels"]
    lines = [
        f"Since {snap['since'][:16]} UTC ({snap['scope']}):",
        f"  accepted {t['accepted']} messages to {t['recipients']} recipients; delivered "
        f"{t['delivered']}, deferred {t['deferred']}, bounced {t['hard_bounces']} hard + "
        f"{t['soft_bounces']} soft, {t['complaints']} complaints, "
        f"{t['suppressions_added']} suppressions added",
        f"  bounce rate {pct(t['bounce_rate'])} ({lv['bounce_rate']}), complaint rate "
        f"{pct(t['complaint_rate'])} ({lv['complaint_rate']})",
    ]
    for domain, view in snap["domains"].items():
        d = view["totals"]
        lines.append(
            f"  {domain}: {d['accepted']} accepted, {d['delivered']} delivered, "
            f"{d['bounces']} bounced ({pct(d['bounce_rate'])}), {d['complaints']} complaints"
        )
    q, lim = snap["queue"], snap["limits"]
    lines.append(f"  queue: {q['messages']} messages; oldest {q['oldest_age_seconds'] or '-'} s")
    lines.append(f"  today: {lim['recipients_today']} of {lim['recipients_per_day']} recipients")
    return "\n".join(lines) + "\n"
