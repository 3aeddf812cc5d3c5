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
    from relay.webhooks import Webhooks

WEBHOOK_GRACE = 30.0  # seconds a retiring host waits for its last webhook events to go


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
    from relay.relayoptions import RelayOptions
    from relay.stores import RelayStores
    from relay.webhooks import Webhooks

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
    # Its outcomes reach the webhooks through the outbox a serving relay sends from; a
    # retiring host (--until-empty) has none serving, so it sends them itself.
    hooks = Webhooks(RelayOptions(data_dir=folder), holder, log, gauges, sending=until_empty)
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
        asyncio.run(_deliver(worker, holder, mode, stores, hooks))
    return ExitStatus.OK


async def _deliver(
    worker: DeliveryWorker, holder: PolicyHolder, mode: str, stores: RelayStores, hooks: Webhooks
) -> None:
    background = [] if stores.run is None else [asyncio.ensure_future(stores.run())]
    background.append(asyncio.ensure_future(hooks.run()))
    try:
        await _work(worker, holder, mode)
        if mode == "until-empty" and holder.policy.relay.webhooks:
            left = await hooks.wait_sent(WEBHOOK_GRACE)
            if left:
                worker.log.emit("webhook_events_left", events=left, file=str(hooks.path))
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        hooks.tap.stop()  # what is still queued is written for the next relay to send
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
