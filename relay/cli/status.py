"""`postform relay status`: the queue, deferrals per destination, suppressions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

from relay import enforced
from relay.cli.options import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DataDirOpt,
    JsonOpt,
    data_folder,
    out,
    site_for,
)
from relay.contract.errors import ExitStatus
from relay.queueview import queue_view
from relay.store.sqlite import learned_count, outbox_count


def status(
    ctx: typer.Context,
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> ExitStatus:
    """Queue size, oldest message, deferred recipients per destination, suppressed count."""
    folder = data_folder(site_for(ctx, config), data_dir)
    report = queue_report(folder)
    if as_json:
        out(json.dumps(asdict(report), indent=2) + "\n")
        return ExitStatus.OK
    age = report.oldest_age_seconds
    rows = [
        ("policy enforced", _policy_line(report)),
        ("queued messages", str(report.queue_messages)),
        ("oldest message", "-" if age is None else f"{age} s"),
        ("suppressed addresses", str(report.suppressed)),
    ]
    if report.unwritten_to_shared_store:  # a fleet's relay during or after an outage
        rows.append(
            ("not yet in the shared store", f"{report.unwritten_to_shared_store} change(s)")
        )
    rows += [(f"deferred to {d}", str(n)) for d, n in report.deferred_by_destination.items()]
    width = max(len(k) for k, _ in rows)
    out("".join(f"{k.ljust(width)}  {v}\n" for k, v in rows))
    return ExitStatus.OK


def _policy_line(report: QueueReport) -> str:
    if report.policy_serial is None:
        return "- (no relay has served from this data folder)"
    age = "" if report.policy_age_seconds is None else f", {report.policy_age_seconds:.0f} s old"
    return (
        f"serial {report.policy_serial}.{report.policy_revision} (published "
        f"{report.policy_published_at or '?'}{age}; loaded {report.policy_loaded_at} from "
        f"{report.policy_source})"
    )


@dataclass(frozen=True)
class QueueReport:
    policy_serial: int | None
    policy_revision: int | None
    policy_published_at: str | None
    policy_age_seconds: float | None
    policy_loaded_at: str | None
    policy_source: str | None
    queue_messages: int
    oldest_age_seconds: float | None
    deferred_by_destination: dict[str, int]
    suppressed: int
    unwritten_to_shared_store: int  # learned during a store outage; 0 before retiring a host


def queue_report(folder: Path) -> QueueReport:
    queue = queue_view(folder)
    seen = enforced.read(folder)
    return QueueReport(
        policy_serial=seen.serial if seen else None,
        policy_revision=seen.revision if seen else None,
        policy_published_at=seen.published_at if seen else None,
        policy_age_seconds=round(age, 1) if seen and (age := seen.age()) is not None else None,
        policy_loaded_at=seen.loaded_at if seen else None,
        policy_source=seen.source if seen else None,
        queue_messages=queue.messages,
        oldest_age_seconds=queue.oldest_age_seconds,
        deferred_by_destination=queue.deferred_by_destination,
        suppressed=learned_count(folder) or 0,
        unwritten_to_shared_store=outbox_count(folder) or 0,
    )
