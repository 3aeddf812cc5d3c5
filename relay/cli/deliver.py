"""`postform relay deliver`: only the delivery worker, for operators who split the roles."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from relay.cli.options import (
    DEFAULT_CONFIG,
    ConfigOpt,
    DataDirOpt,
    MetricsOpt,
    MtaStsPortOpt,
    MxNameserverOpt,
    OutboundPortOpt,
    site_for,
)
from relay.contract.errors import ExitStatus, UserError
from relay.datalock import data_lock
from relay.events import EVENT_FILE, EventLog
from relay.policyholder import PolicyHolder

if TYPE_CHECKING:  # imported when the command runs: dnspython is slow
    from relay.delivery import DeliveryWorker
    from relay.stores import RelayStores


def deliver(
    ctx: typer.Context,
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    nameserver: MxNameserverOpt = None,
    metrics: MetricsOpt = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass over the queue, then exit.")
    ] = False,
    until_empty: Annotated[
        bool,
        typer.Option(
            "--until-empty",
            help="Deliver and retry as usual; exit when the queue is empty (retiring a host).",
        ),
    ] = False,
    outbound_port: OutboundPortOpt = 25,
    mta_sts_port: MtaStsPortOpt = 443,
) -> ExitStatus:
    """Run only the delivery worker (for operators who split the roles)."""
    from relay.delivery import DeliveryWorker
    from relay.metrics import Metrics
    from relay.stores import RelayStores

    site = site_for(ctx, config)
    source = site.source()
    log = EventLog()
    holder = PolicyHolder(source, log, interval=1.0)
    folder = site.data_dir(holder.policy.relay.data_dir, data_dir)
    log.path = folder / EVENT_FILE
    os.umask(0o077)
    gauges = Metrics() if metrics else None
    if gauges is not None and metrics:
        gauges.serve(metrics)
    stores = RelayStores.for_policy(holder.policy, folder, log, site.pg)
    worker = DeliveryWorker(
        folder / "spool" / "queue",
        holder,
        stores.suppressions,
        log,
        gauges,
        nameserver=nameserver,
        port=outbound_port,
        bounce_key=stores.bounce_key(),
        https_port=mta_sts_port,
        rescan=1.0,  # the relays serving beside it spool into the folder it delivers from
    )
    (folder / "spool" / "queue").mkdir(parents=True, exist_ok=True)
    if once and until_empty:
        stores.close()
        raise UserError("--once and --until-empty: choose one")
    mode = "once" if once else "until-empty" if until_empty else "follow"
    with data_lock(folder, "deliver"):
        asyncio.run(_deliver(worker, holder, mode, stores))
    return ExitStatus.OK


async def _deliver(
    worker: DeliveryWorker, holder: PolicyHolder, mode: str, stores: RelayStores
) -> None:
    background = [] if stores.run is None else [asyncio.ensure_future(stores.run())]
    try:
        await _work(worker, holder, mode)
    finally:
        for task in background:
            task.cancel()
        await stores.finish()


async def _work(worker: DeliveryWorker, holder: PolicyHolder, mode: str) -> None:
    if mode == "once":
        await worker.run_once()
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    following = loop.create_task(holder.follow())
    watching = loop.create_task(_until_empty(worker, stop)) if mode == "until-empty" else None
    await worker.run(stop)
    following.cancel()
    if watching is not None:
        watching.cancel()


async def _until_empty(worker: DeliveryWorker, stop: asyncio.Event) -> None:
    """Stop the worker once nothing is left in the queue (a retired host's last job)."""
    while True:
        await asyncio.sleep(0.5)
        await worker.removals.drain()  # finished messages are removed in batches
        if not any(worker.queue_dir.glob("*.msg")):
            stop.set()
            return
