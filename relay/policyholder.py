"""The policy in force on a relay, and how it follows its source.

`PolicyHolder` keeps the policy and replaces it atomically. A new document is loaded
off the event loop (sessions keep being served while it is read), and a document that
cannot be used (damaged, a version this relay does not read) is logged and skipped:
the last good policy stays in force, and the next good one is taken. Nothing a load or
a listener raises stops the loop: an unexpected error is a `policy_error` event too, and
every failed load is counted for the metrics (`on_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
from collections.abc import Callable

from relay.contract.policy import PolicyError, PolicyUnavailable, RelayPolicy
from relay.contract.senderset import SenderSet
from relay.events import EventLog
from relay.policysource import PolicySource

Listener = Callable[[RelayPolicy, RelayPolicy], None]
MAX_RETIRED = 4
ErrorListener = Callable[[str], None]


class PolicyHolder:
    """The policy in force. Readers take `holder.policy` once per decision."""

    def __init__(self, source: PolicySource, log: EventLog, interval: float = 0.5) -> None:
        self.source = source
        self.log = log
        self.interval = interval
        self._listeners: list[Listener] = []
        self._error_listeners: list[ErrorListener] = []
        self.failing = False  # the newest load failed: the last good policy is in force
        self._forced = asyncio.Event()
        self._last_error = ""
        # Policies replaced by a reload, freed piecemeal once nothing uses them (_bury).
        self._retired: list[RelayPolicy] = []
        try:
            self.policy = source.load()  # PolicyError: nothing to serve
        except PolicyUnavailable as exc:
            if exc.cached is None:
                raise
            self.policy = exc.cached  # the source is down: serve the last copy kept here
            self._last_error = str(exc)
            log.emit("policy_cached", error=str(exc), serial=self.policy.serial)
        self.policy.label_domains  # noqa: B018 - at start, not at the first message

    def __call__(self) -> RelayPolicy:
        return self.policy

    def on_change(self, listener: Listener) -> None:
        """Call `listener(old, new)` after each swap."""
        self._listeners.append(listener)

    def on_error(self, listener: ErrorListener) -> None:
        """Call `listener(error)` after each failed load."""
        self._error_listeners.append(listener)

    def force(self) -> None:
        """Reload now (SIGHUP), even if nothing seems to have changed."""
        self._forced.set()

    async def follow(self) -> None:
        """Reload whenever the source changes or a reload is forced; runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._forced.wait(), self.interval)
            forced = self._forced.is_set()
            self._forced.clear()
            try:
                if forced or self.source.changed():
                    await self.reload(forced)
                await self._bury()
            except Exception as exc:  # a bug must not end the reloads: log it and go on
                self._failed(f"{type(exc).__name__}: {exc}")

    async def reload(self, forced: bool = False) -> bool:
        """Load the source off the event loop and swap it in; whether the policy changed."""
        loop = asyncio.get_running_loop()
        try:
            policy = await loop.run_in_executor(None, _load_without_collections, self.source)
        except PolicyError as exc:
            self._failed(str(exc))
            return False
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            return False
        self.failing = False
        if self._last_error:
            self.log.emit("policy_source_back", serial=policy.serial)
            self._last_error = ""
        if policy.version == self.policy.version and not forced:
            return False
        old, self.policy = self.policy, policy
        for listener in self._listeners:
            try:
                listener(old, policy)
            except Exception as exc:  # the new policy is in force; say what did not follow
                self.log.emit("policy_listener_error", error=f"{type(exc).__name__}: {exc}")
        self.log.emit(
            "policy_reloaded",
            serial=policy.serial,
            revision=policy.revision,
            previous=old.serial,
            forced=forced,
        )
        self._retired.append(old)
        return True

    async def _bury(self) -> None:
        """Free replaced policies that nothing refers to any more (a session may hold
        one across an await for a while): their senders shard by shard on a thread, so
        no single step holds the sessions for long (one frozenset of 100,000 addresses
        took ~10 ms to free). Beyond MAX_RETIRED the oldest is simply let go."""
        loop = asyncio.get_running_loop()
        for policy in list(self._retired):
            # References: the list, `policy`, the list() copy and getrefcount's argument.
            if sys.getrefcount(policy) <= 4:
                if isinstance(policy.senders, SenderSet):
                    await loop.run_in_executor(None, policy.senders.dismantle)
                self._retired.remove(policy)
            elif len(self._retired) > MAX_RETIRED:
                self._retired.remove(policy)

    def _failed(self, error: str) -> None:
        self.failing = True
        if error != self._last_error:  # logged once per problem, not once per poll
            self.log.emit("policy_error", error=error, kept_serial=self.policy.serial)
            self._last_error = error
        for listener in self._error_listeners:
            listener(error)


def _load_without_collections(source: PolicySource) -> RelayPolicy:
    """Load with the cyclic collector paused: a document of 100,000 senders allocates
    enough to start full collections, each of which would hold every session (the
    collector runs with the interpreter lock, whichever thread triggered it). Collection
    resumes right after; a policy holds no reference cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        policy = source.load()
        policy.label_domains  # noqa: B018 - computed here, not on the loop at first use
        return policy
    finally:
        if was_enabled:
            gc.collect(1)  # the young generations now, here, not on the loop's next allocation
            gc.enable()
