"""Operating the relay: `relay deliver|status|events` and `suppressions ...`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cliutil import (
    DEFAULT_CONFIG_PATH,
    ConfigOpt,
    MetricsOpt,
    MxNameserverOpt,
    out,
    reported,
)
from reconciler.config import load_config
from reconciler.errors import PostformError
from reconciler.names import normalize_address
from reconciler.relaydata import relay_data_dir
from relay.datalock import data_lock
from relay.delivery import DeliveryWorker
from relay.events import EventLog, event_files
from relay.metrics import Metrics
from relay.policy import PolicyError, RelayPolicy, read_policy
from relay.queuestate import load_state
from relay.spool import read_spool_file
from relay.suppressions import REASONS, SuppressionStore

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="The relay's data folder.")]
suppressions_app = typer.Typer(
    rich_markup_mode=None,
    no_args_is_help=True,
    help="The runtime suppression list (learned from bounces).",
)


def _store(config: Path, data_dir: Path | None) -> SuppressionStore:
    return SuppressionStore(relay_data_dir(load_config(config), data_dir) / "relay.sqlite")


def deliver(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    data_dir: DataDirOpt = None,
    nameserver: MxNameserverOpt = None,
    metrics: MetricsOpt = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass over the queue, then exit.")
    ] = False,
) -> None:
    """Run only the delivery worker (for operators who split the roles)."""
    cfg = load_config(config)
    folder = relay_data_dir(cfg, data_dir)
    os.umask(0o077)
    holder: dict[str, RelayPolicy] = {}
    try:
        holder["policy"] = read_policy(cfg.state_path)
    except PolicyError as exc:
        raise PostformError(str(exc)) from None
    gauges = Metrics() if metrics else None
    if gauges is not None and metrics:
        gauges.serve(metrics)
    store = SuppressionStore(folder / "relay.sqlite")
    worker = DeliveryWorker(
        folder / "spool" / "queue",
        lambda: holder["policy"],
        store,
        EventLog(path=folder / "events.jsonl"),
        gauges,
        nameserver=nameserver,
    )
    (folder / "spool" / "queue").mkdir(parents=True, exist_ok=True)
    try:
        with data_lock(folder, "deliver"):
            asyncio.run(_deliver(worker, once, cfg.state_path, holder))
    except PolicyError as exc:
        raise PostformError(str(exc)) from None
    finally:
        store.close()


async def _deliver(
    worker: DeliveryWorker, once: bool, state_path: Path, holder: dict[str, RelayPolicy]
) -> None:
    if once:
        await worker.run_once()
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def reload() -> None:
        while not stop.is_set():
            await asyncio.sleep(1.0)
            try:
                policy = read_policy(state_path)
            except PolicyError:
                continue
            if policy.serial != holder["policy"].serial:
                holder["policy"] = policy

    task = loop.create_task(reload())
    await worker.run(stop)
    task.cancel()


def status(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Queue size, oldest message, deferred recipients per destination, suppressed count."""
    cfg = load_config(config)
    folder = relay_data_dir(cfg, data_dir)
    queue = folder / "spool" / "queue"
    ids = sorted(p.stem for p in queue.glob("*.msg")) if queue.exists() else []
    deferred: Counter[str] = Counter()
    oldest = None
    for queue_id in ids:
        try:
            spooled = read_spool_file(queue / f"{queue_id}.msg")
        except (OSError, ValueError):
            continue
        received = spooled.envelope.get("received_at", 0.0)
        oldest = received if oldest is None else min(oldest, received)
        state = load_state(queue, queue_id)
        for rcpt in state.pending() if state else []:
            if state and state.recipients[rcpt].attempts:
                deferred[rcpt.rpartition("@")[2].lower()] += 1
    suppressed = _store(config, data_dir).count() if (folder / "relay.sqlite").exists() else 0
    report = {
        "queue_messages": len(ids),
        "oldest_age_seconds": round(time.time() - oldest, 1) if oldest else None,
        "deferred_by_destination": dict(deferred.most_common()),
        "suppressed": suppressed,
    }
    if as_json:
        out(json.dumps(report, indent=2) + "\n")
        return
    age = "-" if oldest is None else f"{report['oldest_age_seconds']} s"
    rows = [
        ("queued messages", str(len(ids))),
        ("oldest message", age),
        ("suppressed addresses", str(suppressed)),
    ]
    rows += [(f"deferred to {dest}", str(n)) for dest, n in deferred.most_common()]
    width = max(len(k) for k, _ in rows)
    out("".join(f"{k.ljust(width)}  {v}\n" for k, v in rows))


def events(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    data_dir: DataDirOpt = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO time, or 10m / 2h / 1d.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
) -> None:
    """Print the relay's event log (JSON lines), oldest first."""
    folder = relay_data_dir(load_config(config), data_dir)
    cutoff = _cutoff(since)
    for path in event_files(folder):
        with path.open() as fh:
            for line in fh:
                if _after(line, cutoff):
                    out(line)
    if follow:
        _follow(folder / "events.jsonl", cutoff)


def _cutoff(since: str | None) -> str | None:
    if not since:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if since[:-1].isdigit() and since[-1] in units:
        moment = datetime.fromtimestamp(time.time() - int(since[:-1]) * units[since[-1]], UTC)
        return moment.isoformat(timespec="milliseconds")
    try:
        return datetime.fromisoformat(since).astimezone(UTC).isoformat(timespec="milliseconds")
    except ValueError:
        raise PostformError(f"--since {since!r}: expected an ISO time or 10m, 2h, 1d") from None


def _after(line: str, cutoff: str | None) -> bool:
    if cutoff is None:
        return True
    try:
        return json.loads(line).get("ts", "") >= cutoff
    except ValueError:
        return False


def _follow(path: Path, cutoff: str | None) -> None:
    position = path.stat().st_size if path.exists() else 0
    while True:
        time.sleep(0.5)
        if not path.exists():
            continue
        size = path.stat().st_size
        if size < position:
            position = 0  # rotated
        with path.open() as fh:
            fh.seek(position)
            for line in fh:
                if _after(line, cutoff):
                    out(line)
            position = fh.tell()


ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Filter by reason.")]


@suppressions_app.command("list")
@reported
def list_cmd(
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    data_dir: DataDirOpt = None,
    reason: ReasonOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Learned and manually added suppressions (declared ones are in `postform show`)."""
    rows = _store(config, data_dir).list(reason)
    if as_json:
        out(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
        return
    for r in rows:
        when = datetime.fromtimestamp(r.created, UTC).isoformat(timespec="seconds")
        out(f"{r.address}\t{r.reason}\t{when}\t{r.queue_id or '-'}\t{r.reply or r.note or ''}\n")
    out(f"{len(rows)} suppressed address(es).\n")


@suppressions_app.command("add")
@reported
def add_cmd(
    address: Annotated[str, typer.Argument(help="The address to suppress.")],
    reason: Annotated[str, typer.Option("--reason", help=", ".join(REASONS))] = "MANUAL",
    note: Annotated[str | None, typer.Option("--note", help="Why, for the record.")] = None,
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    data_dir: DataDirOpt = None,
) -> None:
    """Suppress an address now (the relay refuses it at RCPT at once)."""
    normal = normalize_address(address)
    if normal is None:
        raise PostformError(f"{address!r} is not a valid email address")
    if reason.upper() not in REASONS:
        raise PostformError(f"--reason {reason!r}: expected one of {', '.join(REASONS)}")
    added = _store(config, data_dir).add(normal, reason.upper(), note=note)
    out(
        f"Suppressed {normal} ({reason.upper()}).\n"
        if added
        else f"{normal} was already suppressed.\n"
    )


@suppressions_app.command("remove")
@reported
def remove_cmd(
    address: Annotated[str, typer.Argument(help="The address to release.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log); required.")],
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    data_dir: DataDirOpt = None,
) -> None:
    """Release a suppressed address; the reason is recorded (and logged as an event)."""
    normal = normalize_address(address) or address
    if not reason.strip():
        raise PostformError("--reason must say why the address is released")
    cfg = load_config(config)
    folder = relay_data_dir(cfg, data_dir)
    removed = _store(config, data_dir).remove(normal, reason)
    if removed is None:
        raise PostformError(f"{normal} is not on the runtime suppression list")
    EventLog(path=folder / "events.jsonl").emit(
        "unsuppressed", recipient=normal, previous_reason=removed.reason, why=reason
    )
    out(f"Released {normal} (was {removed.reason}).\n")


@suppressions_app.command("export")
@reported
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    config: ConfigOpt = DEFAULT_CONFIG_PATH,
    data_dir: DataDirOpt = None,
) -> None:
    """Export the runtime list."""
    rows = _store(config, data_dir).list()
    if fmt == "json":
        out(json.dumps([r.__dict__ for r in rows], indent=2) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["address", "reason", "created", "queue_id", "reply", "note"])
        for r in rows:
            writer.writerow(
                [
                    r.address,
                    r.reason,
                    datetime.fromtimestamp(r.created, UTC).isoformat(timespec="seconds"),
                    r.queue_id or "",
                    r.reply or "",
                    r.note or "",
                ]
            )
        out(buffer.getvalue())
    else:
        raise PostformError(f"--format {fmt!r}: expected csv or json")
