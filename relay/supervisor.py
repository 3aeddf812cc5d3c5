"""Run the relay in one process, or in N worker processes sharing the listening ports
(SO_REUSEPORT), so that both cores serve SMTP: one aiosmtpd event loop uses one core.

The parent forks before any event loop or thread exists, forwards SIGTERM, SIGINT and
SIGHUP to the workers, and exits 0 only when every worker did. If a worker dies on its
own, the others are stopped and the parent exits 1: a supervisor (systemd) restarts all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

from relay.events import EventLog
from relay.server import Relay
from relay.spool import Spool

RelayFactory = Callable[[int, int], Relay]
WorkerExited = Callable[[int], None]


def serve(
    make_relay: RelayFactory,
    workers: int,
    spool_root: Path,
    log: EventLog,
    on_exit: WorkerExited | None = None,
) -> int:
    if workers <= 1:
        return asyncio.run(make_relay(0, 1).run())
    Spool(spool_root, clean=True)  # tmp/ leftovers are removed once, before the workers run
    children: dict[int, int] = {}
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os._exit(_child(make_relay, index, workers, log))
        children[pid] = index
    return _supervise(children, log, on_exit)


def _child(make_relay: RelayFactory, index: int, workers: int, log: EventLog) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    try:
        return asyncio.run(make_relay(index, workers).run())
    except Exception as exc:
        log.emit("worker_error", worker=index, error=f"{type(exc).__name__}: {exc}")
        return 1


def _supervise(children: dict[int, int], log: EventLog, on_exit: WorkerExited | None) -> int:
    stopping = False

    def forward(sig: int, _frame: object) -> None:
        nonlocal stopping
        if sig != signal.SIGHUP:
            stopping = True
        for pid in children:
            _kill(pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        index = children.pop(pid, None)
        if on_exit is not None:
            on_exit(pid)
        if os.waitstatus_to_exitcode(code) != 0:
            status = 1
            log.emit("worker_exited", worker=index, pid=pid, status=os.waitstatus_to_exitcode(code))
            if not stopping:
                stopping = True
                for other in children:
                    _kill(other, signal.SIGTERM)
    return status


def _kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
