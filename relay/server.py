"""The relay process: the composition root and its lifecycle.

`Relay` builds the collaborators (policy holder, stores, admission, acceptor,
handler, delivery worker), opens the listeners, follows new policies, saves the
counters every second, and shuts down gracefully on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
import ssl
import time
from typing import Any

from relay import enforced, webhooks
from relay import replies as R
from relay.acceptor import Acceptor, Signers
from relay.admission import Admission
from relay.auth import PasswordChecker
from relay.backlog import Backlog
from relay.bouncehandler import BounceHandler
from relay.connections import ConnectionGate
from relay.contract.hostport import Listener
from relay.contract.policy import PolicyError, RelayPolicy
from relay.delivery import DeliveryWorker
from relay.events import EVENT_FILE, EventLog
from relay.handler import RelayHandler
from relay.metrics import Metrics
from relay.policyholder import PolicyHolder
from relay.policysource import PolicySource
from relay.relayoptions import RelayOptions
from relay.smtp import RelaySMTP, quiet_aiosmtpd
from relay.spool import Spool
from relay.stores import RelayStores
from relay.tlsconfig import server_context
from relay.verp import Verp
from relay.webendpoints import open_endpoints

BOUNCE_OVERHEAD = 64 * 1024  # a bounce is the original message and the report around it


class Relay:
    def __init__(
        self,
        source: PolicySource,
        options: RelayOptions,
        *,
        stores: RelayStores | None = None,
        log: EventLog | None = None,
    ) -> None:
        quiet_aiosmtpd()
        self.options = options
        self.log = log or EventLog(path=options.data_dir / EVENT_FILE)
        self.holder = PolicyHolder(source, self.log, options.reload_interval)
        policy = self.holder.policy
        self.listeners = [Listener.parse(t) for t in (options.listen or policy.relay.listen)]
        index, count = options.worker
        self.stores = stores or RelayStores.for_policy(
            policy, options.data_dir, self.log, options.pg
        )
        self.limits = self.stores.limits(policy, options.worker)
        self.store_backend = policy.relay.store  # chosen at start: a change needs a restart
        self.gate = ConnectionGate(lambda: self.policy.relay.sessions)
        self._loop_error_at, self._loop_errors_unlogged = 0.0, 0
        self.metrics = self._metrics()
        self.spool = Spool(options.data_dir / "spool", clean=count == 1)
        bounce_key = self.stores.bounce_key()
        self.delivery: DeliveryWorker | None = None
        if options.deliver and index == 0:
            self.delivery = DeliveryWorker(
                self.spool.queue,
                self.holder,
                self.stores.suppressions,
                self.log,
                self.metrics,
                nameserver=options.nameserver,
                port=options.outbound_port,
                bounce_key=bounce_key,
                https_port=options.mta_sts_port,
                # The other workers spool into the same folder without telling this one.
                rescan=1.0 if count > 1 else 60.0,
            )
        self.sessions: set[RelaySMTP] = set()
        self.handler, self.bounces = self._handlers(bounce_key)
        self.webhooks = webhooks.Webhooks(options, self.holder, self.log, self.metrics)
        self.holder.on_change(self._policy_changed)
        if self.metrics is not None:
            errors = self.metrics.policy_errors
            self.holder.on_error(lambda _: errors.inc())
        self._servers: list[asyncio.Server] = []
        self._stop = asyncio.Event()

    def _handlers(self, bounce_key: bytes) -> tuple[RelayHandler, BounceHandler]:
        """The submission listeners' handler and the MX listener's."""
        handler = RelayHandler(
            self.holder,
            Admission(
                PasswordChecker(), self.stores.throttle, self.limits, self.stores.suppressions
            ),
            Acceptor(
                Signers(),
                self.spool,
                self.log,
                self.metrics,
                self._accepted,
                Backlog(self.spool.queue),
            ),
            self.log,
            self.metrics,
        )
        bounces = BounceHandler(
            self.holder,
            Verp(bounce_key),
            self.stores.suppressions,
            self.log,
            self.options.data_dir,
            self.metrics,
        )
        return handler, bounces

    @property
    def policy(self) -> RelayPolicy:
        return self.holder.policy

    def _metrics(self) -> Metrics | None:
        if not self.options.metrics_address:
            return None
        if self.options.metrics_dir is not None:
            return Metrics(self.options.metrics_dir)  # every worker counts, worker 0 serves
        return Metrics() if self.options.worker[0] == 0 else None

    def _accepted(self, queue_id: str) -> None:
        if self.delivery is not None:
            self.delivery.wake(queue_id)

    def _policy_changed(self, old: RelayPolicy, new: RelayPolicy) -> None:
        if new.limits.messages_per_minute != old.limits.messages_per_minute:
            self.limits.set_rate(new.limits.messages_per_minute)
        if new.relay.store != old.relay.store and new.relay.store != self.store_backend:
            self.log.emit(
                "restart_needed", setting="relay.store", running=self.store_backend,
                applied=new.relay.store,
            )  # fmt: skip
        self._enforcing(new, on_loop=False)

    def _enforcing(self, policy: RelayPolicy, on_loop: bool = True) -> None:
        """Record which policy this relay enforces (relay status, metrics): an fsync'ed
        file, written on a thread after a reload, not on the event loop."""
        if self.options.worker[0] == 0:
            source, folder = self.holder.source.describe(), self.options.data_dir
            record = functools.partial(enforced.record_quietly, folder, policy, source)
            if on_loop:
                record()
            else:
                asyncio.get_running_loop().run_in_executor(None, record)
        if self.metrics is not None:
            self.metrics.policy_serial.set(policy.serial)
            self.metrics.policy_age.set(enforced.policy_age(policy.published_at) or 0.0)

    def _context(self) -> ssl.SSLContext:
        if self.options.tls_files is None:
            raise PolicyError(
                "no TLS certificate: set relay.tls {cert, key} in the config, "
                "or run with --self-signed for a local trial"
            )
        return server_context(*self.options.tls_files)

    def _protocol(self, listener: Listener, context: ssl.SSLContext) -> RelaySMTP:
        """A session on `listener`. An mx listener takes bounce messages and complaints:
        STARTTLS offered, no AUTH (nothing to log in to), and room for a bounce, which may
        carry the whole original message."""
        mx, implicit = listener.mode == "mx", listener.mode == "tls"
        policy = self.policy
        return RelaySMTP(
            self.bounces if mx else self.handler,
            mode=listener.mode,
            sessions=self.sessions,
            log=self.log,
            proxy=listener.proxy,
            gate=self.gate,
            limits=lambda: self.policy.relay.sessions,
            hostname=policy.relay.hostname,
            ident="postform relay",
            data_size_limit=policy.limits.max_message_bytes + (BOUNCE_OVERHEAD if mx else 0),
            tls_context=None if implicit else context,
            require_starttls=False,
            auth_required=not mx,
            auth_require_tls=not implicit,
            auth_exclude_mechanism=["LOGIN", "PLAIN"] if mx else ["LOGIN"],
            enable_SMTPUTF8=False,
            timeout=300,
        )

    async def start(self) -> None:
        context = self._context()
        loop = asyncio.get_running_loop()
        for listener in self.listeners:
            server = await loop.create_server(
                functools.partial(self._protocol, listener, context),
                listener.host,
                listener.port,
                ssl=context if listener.mode == "tls" else None,
                reuse_port=True,
            )
            self._servers.append(server)
            self.log.emit(
                "listening",
                listener=str(listener),
                serial=self.policy.serial,
                worker=self.options.worker[0],
            )

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; reload on SIGHUP or a new policy."""
        loop = asyncio.get_running_loop()
        # Handlers first: a signal sent as soon as the relay says it listens is handled.
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.holder.force)
        loop.set_exception_handler(self._loop_error)
        await self.start()
        self._enforcing(self.policy)
        # What start-up made (modules, the policy) lives as long as the process: out of
        # the collector's way, so a full collection (during a policy reload's allocations,
        # say) walks only what came after, not the whole process.
        gc.freeze()
        tasks = [loop.create_task(self.holder.follow()), loop.create_task(self._flush_loop())]
        tasks.append(loop.create_task(self.webhooks.run()))
        if self.stores.run is not None:
            tasks.append(loop.create_task(self.stores.run()))
        for web in open_endpoints(self.options, self.metrics, lambda: self.policy):
            for name in web.serves:  # "metrics", "dashboard"
                self.log.emit(name, address=web.address)
        delivering = None
        if self.delivery is not None:
            delivering = loop.create_task(self.delivery.run(self._stop))
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await self.shutdown()
        if delivering is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(delivering, self.options.grace)
        await self.stores.finish()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own errors (an accept() out of descriptors, a callback that raised)
        as JSON events, at most one a second (the rest are counted), never a traceback."""
        now = time.monotonic()
        if now - self._loop_error_at < 1.0:
            self._loop_errors_unlogged += 1
            return
        exc = context.get("exception")
        self.log.emit(
            "loop_error",
            message=str(context.get("message", "")),
            error=f"{type(exc).__name__}: {exc}" if exc is not None else None,
            unlogged=self._loop_errors_unlogged,
        )
        self._loop_error_at, self._loop_errors_unlogged = now, 0

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.limits.flush()
            self.log.summarize()
            if self.metrics is not None:
                age = enforced.policy_age(self.policy.published_at)
                self.metrics.policy_age.set(age or 0.0)
                self.metrics.policy_failing.set(1 if self.holder.failing else 0)

    async def shutdown(self) -> None:
        """Stop accepting; let transactions in progress finish; close idle sessions."""
        for server in self._servers:
            server.close()
        deadline = time.monotonic() + self.options.grace
        while self.sessions and time.monotonic() < deadline:
            for proto in list(self.sessions):
                envelope = proto.envelope
                if envelope is None or envelope.mail_from is None:
                    self._close(proto)
            await asyncio.sleep(0.05)
        for proto in list(self.sessions):
            self._close(proto)
        self.limits.flush()
        await self.limits.close()
        self.log.summarize(force=True)
        self.log.emit("stopped", serial=self.policy.serial)

    def _close(self, proto: RelaySMTP) -> None:
        proto.close_with(R.S421_SHUTTING_DOWN)
        self.sessions.discard(proto)
