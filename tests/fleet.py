"""A fleet for tests: relays in separate folders (each its own host), one PostgreSQL state
and shared store, and real HAProxy in front: one balancer over all relays, and one per
relay for a test that must reach a given relay through the PROXY protocol too."""

from __future__ import annotations

import smtplib
import ssl
import time
from pathlib import Path

from tests.haproxy import HaProxy
from tests.relayproc import RELAY_CONFIG, RelayProcess

PG_STATE = "state: {{backend: postgres, name: production, dsn_env: POSTFORM_PG_DSN}}\n"


def fleet_config(per_minute: int = 18000, per_day: int = 50000, relay_extra: str = "") -> str:
    text = RELAY_CONFIG.replace("state: {{path: state/state.json}}\n", PG_STATE).format(
        per_minute=per_minute, per_day=per_day, max_bytes=2097152
    )
    return text.replace(
        "  ipv4: [192.0.2.10]\n",
        "  ipv4: [192.0.2.10]\n  proxy_from: [127.0.0.1]\n  store: {backend: postgres}\n"
        + relay_extra,
    )


class Fleet:
    def __init__(self, folder: Path, size: int, config: str) -> None:
        self.relays = [
            RelayProcess(folder / f"relay{i}", config=config, proxy=True) for i in range(size)
        ]
        for relay in self.relays[1:]:  # the first apply made the credentials
            relay.creds = self.relays[0].creds
        self.folder = folder
        self.balancer: HaProxy | None = None
        self.direct: list[HaProxy] = []

    def start(self, *extra: str, deliver: bool = False) -> Fleet:
        for relay in self.relays:
            relay.start(*extra, deliver=deliver)
        self.balancer = HaProxy(self.folder / "lb", [r.port for r in self.relays]).start()
        self.direct = [
            HaProxy(self.folder / f"lb{i}", [r.port]).start() for i, r in enumerate(self.relays)
        ]
        return self

    def restart(self, index: int, *extra: str, deliver: bool = False) -> None:
        """Restart one relay, and wait until the balancers' health checks see it again."""
        relay = self.relays[index]
        assert relay.stop() == 0
        relay.start(*extra, deliver=deliver)
        name = f"relay{index + 1}"
        deadline = time.monotonic() + 20
        while True:
            proxies = [(self.balancer, name), (self.direct[index], "relay1")]
            if all(p is not None and p.states().get(n) == "UP" for p, n in proxies):
                return
            assert time.monotonic() < deadline, "the balancer did not see the relay come back"
            time.sleep(0.1)

    def stop(self) -> list[int]:
        for proxy in [self.balancer, *self.direct]:
            if proxy is not None:
                proxy.stop()
        return [r.stop() for r in self.relays if r.proc is not None]

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        for relay in self.relays:
            relay.ca.configure_trust(context)
        context.check_hostname = False
        return context

    def client(
        self, relay: int | None = None, source: str = "127.0.0.1", login: str | None = "app"
    ) -> smtplib.SMTP:
        """A submission client through the balancer, or through relay `relay`'s own proxy."""
        proxy = self.balancer if relay is None else self.direct[relay]
        assert proxy is not None
        client = smtplib.SMTP(
            "127.0.0.1", proxy.port, local_hostname="client.test", timeout=20,
            source_address=(source, 0),
        )  # fmt: skip
        client.ehlo()
        client.starttls(context=self.context())
        client.ehlo()
        if login is not None:
            cred = self.relays[0].creds[login]
            client.login(cred["username"], cred["password"])
        return client
