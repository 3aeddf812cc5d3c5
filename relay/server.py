"""The relay process: listeners, TLS, policy reloads, counters, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import ssl
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.smtp import SMTP

from relay import replies as R
from relay.auth import FailureTracker, PasswordChecker, decode_plain
from relay.delivery import DeliveryWorker
from relay.dkimsign import DkimSigner
from relay.events import EVENT_FILE, EventLog
from relay.handler import RelayHandler
from relay.metrics import Metrics
from relay.policy import PolicyError, RelayPolicy, SigningKey, read_policy
from relay.ratelimit import DailyCounter, TokenBucket, utc_day
from relay.spool import Spool
from relay.store import Store
from relay.suppressions import SuppressionStore
from relay.tlsconfig import server_context


class _QuietAiosmtpd(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation on every successful AUTH: drop that line only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


# aiosmtpd logs every connection at INFO (the relay logs its own JSON events), and warns
# that AUTH without TLS is allowed on implicit-TLS listeners, where the socket is TLS.
logging.getLogger("mail.log").setLevel(logging.WARNING)
logging.getLogger("mail.log").addFilter(_QuietAiosmtpd())
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


_PLAIN_ANGLE_ADDR = re.compile(r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)>")


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    mode: str  # starttls | tls

    @classmethod
    def parse(cls, text: str) -> Listener:
        address, _, mode = text.partition("/")
        if address.startswith("["):
            host, _, port = address[1:].partition("]:")
        else:
            host, _, port = address.rpartition(":")
        if mode not in ("", "starttls", "tls") or not host or not port.isdigit():
            raise ValueError(f"listener {text!r} is not HOST:PORT[/starttls|/tls]")
        return cls(host, int(port), mode or "starttls")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}/{self.mode}"


class RelaySMTP(SMTP):
    """aiosmtpd's SMTP with the relay's size reply, session tracking and address blocking."""

    def __init__(self, relay: Relay, mode: str, **kwargs: object) -> None:
        super().__init__(RelayHandler(relay), **kwargs)  # type: ignore[arg-type]
        self.relay = relay
        self.mode = mode

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """Plain `<local@domain>` without email's header parser: aiosmtpd 1.4's version
        builds a typing.Protocol class on every call (about 0.2 ms per MAIL and RCPT).
        Anything else (null sender, quoted local parts, source routes) goes to aiosmtpd."""
        match = _PLAIN_ANGLE_ADDR.match(arg)
        if match is not None:
            return match.group(1), arg[match.end() :]
        return super()._getaddr(arg)

    async def push(self, status: str) -> None:  # type: ignore[override]
        if status in R.AIOSMTPD_SIZE_REPLIES:
            status = R.S552_TOO_BIG.format(limit=self.data_size_limit)
        await super().push(status)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgrade = self.transport is not None  # STARTTLS re-enters here
        super().connection_made(transport)
        if upgrade:
            return
        peer = self.session.peer[0] if isinstance(self.session.peer, tuple) else "?"
        self.relay.sessions.add(self)
        self.relay.log.emit("connect", peer=peer, listener=self.mode)
        if self.relay.failures.blocked(str(peer)):
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()
            reply = R.S421_TOO_MANY_AUTH_FAILURES.format(peer=peer) + "\r\n"
            transport.write(reply.encode())  # type: ignore[attr-defined]
            transport.close()

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        if self in self.relay.sessions:
            self.relay.sessions.discard(self)
            self.relay.log.emit(
                "disconnect",
                peer=self.session.peer[0] if isinstance(self.session.peer, tuple) else "?",
            )


class Relay:
    def __init__(
        self,
        *,
        state_path: Path,
        data_dir: Path,
        listen: list[str] | None = None,
        tls_files: tuple[Path, Path] | None = None,
        worker: tuple[int, int] = (0, 1),
        deliver: bool = True,
        nameserver: str | None = None,
        metrics_address: str | None = None,
        log: EventLog | None = None,
        grace: float = 30.0,
        reload_interval: float = 0.5,
    ) -> None:
        self.state_path = state_path
        self.data_dir = data_dir
        self.policy: RelayPolicy = read_policy(state_path)
        self.listeners = [Listener.parse(t) for t in (listen or self.policy.listen)]
        self.tls_files = tls_files
        self.worker, self.workers = worker
        self.log = log or EventLog(path=data_dir / EVENT_FILE)
        self.grace = grace
        self.reload_interval = reload_interval
        self.sessions: set[RelaySMTP] = set()
        self.failures = FailureTracker()
        self.passwords = PasswordChecker()
        self.decode_plain = decode_plain
        self.spool = Spool(data_dir / "spool", clean=self.workers == 1)
        self.suppressions = SuppressionStore(data_dir / "relay.sqlite")
        self.metrics = Metrics() if metrics_address and self.worker == 0 else None
        self.metrics_address = metrics_address
        self.delivery: DeliveryWorker | None = None
        if deliver and self.worker == 0:
            self.delivery = DeliveryWorker(
                self.spool.queue,
                lambda: self.policy,
                self.suppressions,
                self.log,
                self.metrics,
                nameserver=nameserver,
            )
        self.store = Store(data_dir / "relay.sqlite")
        self.bucket = self._restore_bucket()
        self.daily = DailyCounter()
        self.daily.day = utc_day(time.time())
        self.daily.count = self.store.day_count(self.daily.day)
        self._signers: dict[tuple[str, str, str], DkimSigner] = {}
        self._servers: list[asyncio.Server] = []
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._stamp = self._state_stamp()

    @property
    def _bucket_name(self) -> str:
        return f"messages/{self.worker}/{self.workers}"

    def _per_worker(self, per_minute: int) -> int:
        """Each worker enforces its share of the rate (connections spread evenly)."""
        return max(1, per_minute // self.workers)

    def _restore_bucket(self) -> TokenBucket:
        bucket = TokenBucket(self._per_worker(self.policy.limits.messages_per_minute))
        saved = self.store.load_bucket(self._bucket_name)
        if saved is not None:
            bucket.tokens = min(saved[0], float(bucket.per_minute))
            bucket.updated = saved[1]
        return bucket

    def suppression_reason(self, address: str) -> str | None:
        """Declared (policy) or learned (runtime list): checked on every RCPT."""
        return self.policy.suppressions.get(address.lower()) or self.suppressions.reason(address)

    def count(self, sender: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.messages.labels(sender.rpartition("@")[2] or "unknown", outcome).inc()

    def accepted(self) -> None:
        if self.delivery is not None:
            self.delivery.wake()

    async def signer(self, key: SigningKey) -> DkimSigner:
        """The signer for `key`, loading it (tens of ms for RSA) off the event loop once."""
        ident = (key.domain, key.selector, key.created_at)
        signer = self._signers.get(ident)
        if signer is None:
            loop = asyncio.get_running_loop()
            signer = await loop.run_in_executor(
                None, DkimSigner, key.domain, key.selector, key.algorithm, key.private_key
            )
            self._signers[ident] = signer
        return signer

    def _context(self) -> ssl.SSLContext:
        if self.tls_files is None:
            raise PolicyError(
                "no TLS certificate: set relay.tls {cert, key} in the config, "
                "or run with --self-signed for a local trial"
            )
        return server_context(*self.tls_files)

    def _factory(self, listener: Listener, context: ssl.SSLContext) -> RelaySMTP:
        implicit = listener.mode == "tls"
        return RelaySMTP(
            self,
            listener.mode,
            hostname=self.policy.hostname,
            ident="postform relay",
            data_size_limit=self.policy.limits.max_message_bytes,
            tls_context=None if implicit else context,
            require_starttls=False,
            auth_required=True,
            auth_require_tls=not implicit,
            auth_exclude_mechanism=["LOGIN"],
            enable_SMTPUTF8=False,
            timeout=300,
        )

    async def start(self) -> None:
        context = self._context()
        loop = asyncio.get_running_loop()
        for listener in self.listeners:
            server = await loop.create_server(
                lambda li=listener: self._factory(li, context),
                listener.host,
                listener.port,
                ssl=context if listener.mode == "tls" else None,
                reuse_port=True,
            )
            self._servers.append(server)
            self.log.emit(
                "listening", listener=str(listener), serial=self.policy.serial, worker=self.worker
            )

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; reload on SIGHUP or a new state serial."""
        loop = asyncio.get_running_loop()
        await self.start()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        tasks = [loop.create_task(self._reload_loop()), loop.create_task(self._flush_loop())]
        if self.metrics is not None and self.metrics_address:
            self.metrics.serve(self.metrics_address)
            self.log.emit("metrics", address=self.metrics_address)
        delivering = None
        if self.delivery is not None:
            delivering = loop.create_task(self.delivery.run(self._stop))
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await self.shutdown()
        if delivering is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(delivering, self.grace)
        self.suppressions.close()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def _state_stamp(self) -> tuple[int, int]:
        try:
            st = self.state_path.stat()
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    async def _reload_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reload.wait(), self.reload_interval)
            forced = self._reload.is_set()
            self._reload.clear()
            stamp = self._state_stamp()
            if forced or stamp != self._stamp:
                self._stamp = stamp
                self.reload(forced)

    def reload(self, forced: bool = False) -> None:
        try:
            policy = read_policy(self.state_path)
        except PolicyError as exc:
            self.log.emit("policy_error", error=str(exc), kept_serial=self.policy.serial)
            return
        if policy.serial == self.policy.serial and not forced:
            return
        old = self.policy
        self.policy = policy
        if policy.limits.messages_per_minute != old.limits.messages_per_minute:
            self.bucket.per_minute = self._per_worker(policy.limits.messages_per_minute)
        self.log.emit("policy_reloaded", serial=policy.serial, previous=old.serial, forced=forced)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.flush()

    def flush(self) -> None:
        """Save counters; with several workers, learn the shared daily total."""
        if self.daily.pending:
            self.daily.count = self.store.add_day(self.daily.day, self.daily.pending)
            self.daily.pending = 0
        else:
            self.daily.count = max(self.daily.count, self.store.day_count(self.daily.day))
        self.store.save_bucket(self._bucket_name, self.bucket.tokens, self.bucket.updated)

    async def shutdown(self) -> None:
        """Stop accepting; let transactions in progress finish; close idle sessions."""
        for server in self._servers:
            server.close()
        deadline = time.monotonic() + self.grace
        while self.sessions and time.monotonic() < deadline:
            for proto in list(self.sessions):
                envelope = proto.envelope
                if envelope is None or envelope.mail_from is None:
                    self._close(proto)
            await asyncio.sleep(0.05)
        for proto in list(self.sessions):
            self._close(proto)
        self.flush()
        self.store.close()
        self.log.emit("stopped", serial=self.policy.serial)

    def _close(self, proto: RelaySMTP) -> None:
        if proto.transport is not None and not proto.transport.is_closing():
            proto.transport.write((R.S421_SHUTTING_DOWN + "\r\n").encode())
            proto.transport.close()
        self.sessions.discard(proto)
