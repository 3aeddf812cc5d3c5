"""What the shared store and the load balancer cost a relay, and whether the fleet's limit
holds at speed, in one run.

    .venv/bin/python bench/relay_fleet.py [--sessions 20] [--messages 150] [--repeat 3]

Scenarios, interleaved and repeated (20 kept STARTTLS + AUTH PLAIN sessions of 2 KB
ed25519-signed messages, aiosmtplib, every loop bounded in count and time):

* one relay, embedded store (SQLite): the single-host relay, the baseline;
* one relay, shared store (relay.store.backend: postgres);
* the same relay behind HAProxy (TCP mode, PROXY protocol v2);
* two relays on the shared store behind HAProxy.

All on one PostgreSQL state (a throwaway cluster with fsync on, loopback). The target:
the shared store costs a relay at most 10 % of its throughput. On 2 cores the two
relays, the client, HAProxy and PostgreSQL share the same CPUs, so the fleet figure says
what the store and the balancer cost, not what two hosts would do.

Then the limit under load: recipients_per_day is applied as what the day used so far
plus 2,000, and the same load runs against the two relays: the fleet must accept at
most 2,000 (and, with every lease spent, exactly that many).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from relay_throughput import POSTFORM, body, cpu_seconds, free_port, make_project, wait_port

from tests.haproxy import HaProxy
from tests.pgcluster import PgCluster

RUN_LIMIT_S = 60.0
SENDER = "app@ed.example"
LIMIT_EXTRA = 2000


def config(name: str, store: str, per_day: int = 100_000_000) -> str:
    return f"""\
version: 1
state: {{backend: postgres, name: {name}, dsn_env: POSTFORM_PG_DSN}}
relay:
  hostname: relay.bench
  tls: {{cert: tls.crt, key: tls.key}}
  delivery: {{backlog_slow: 0, backlog_max: 0}}  # submission alone: nothing delivers here
  proxy_from: [127.0.0.1]
  store: {{backend: {store}}}
limits: {{messages_per_minute: 10000000, recipients_per_day: {per_day}}}
domains:
  ed.example: {{dkim: [{{selector: s1, algorithm: ed25519, activation: immediate}}]}}
senders: [{SENDER}]
users:
  bench: {{credentials: [load]}}
"""


@dataclass
class Result:
    rate: float
    sent: int
    refused: int
    seconds: float
    server_cpu_ms: float  # per accepted message, over every relay


class Relay:
    def __init__(self, folder: Path, listens: list[str]) -> None:
        self.folder = folder
        cmd = [POSTFORM, "relay", "serve", "--no-delivery"]
        for listen in listens:
            cmd += ["--listen", listen]
        self.proc = subprocess.Popen(cmd, cwd=folder, stderr=subprocess.DEVNULL)

    def serial(self) -> int:
        out = subprocess.run(
            [POSTFORM, "relay", "status", "--json"],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return int(json.loads(out.stdout)["policy_serial"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


async def one_session(
    port: int, ctx: ssl.SSLContext, cred: dict[str, str], count: int, deadline: float
) -> tuple[int, int]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    await client.connect()
    await client.starttls(tls_context=ctx)
    await client.login(cred["username"], cred["password"])
    data = body(SENDER)
    sent = refused = 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            errors, _ = await client.sendmail(SENDER, ["reader@example.org"], data)
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPResponseException):
            refused += 1
            continue
        if not errors:
            sent += 1
    await client.quit()
    return sent, refused


def measure(
    port: int,
    relays: list[Relay],
    ctx: ssl.SSLContext,
    cred: dict[str, str],
    args: argparse.Namespace,
) -> Result:
    async def load() -> list[tuple[int, int]]:
        deadline = time.monotonic() + RUN_LIMIT_S
        return await asyncio.gather(
            *(one_session(port, ctx, cred, args.messages, deadline) for _ in range(args.sessions))
        )

    cpu0 = sum(cpu_seconds(r.proc.pid) for r in relays)
    started = time.perf_counter()
    counts = asyncio.run(load())
    seconds = time.perf_counter() - started
    cpu = sum(cpu_seconds(r.proc.pid) for r in relays) - cpu0
    sent = sum(c[0] for c in counts)
    refused = sum(c[1] for c in counts)
    return Result(sent / seconds, sent, refused, seconds, 1000 * cpu / max(sent, 1))


def project(work: Path, name: str, store: str) -> tuple[dict[str, str], ssl.SSLContext]:
    work.mkdir(parents=True)
    return make_project(work, config(name, store))


def twin(first: Path, second: Path) -> None:
    """A second host of the same state: the same config and TLS files, its own data."""
    second.mkdir(parents=True)
    for name in ("postform.yaml", "tls.crt", "tls.key"):
        shutil.copy2(first / name, second / name)


def used_today(cluster: PgCluster, db: str, tenant: str) -> int:
    out = cluster.sql(
        f"SELECT coalesce(sum(used), 0) FROM postform.relay_daily WHERE tenant = '{tenant}'", db
    )
    return int(out.strip() or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=150, help="per session")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    cluster = PgCluster(durable=True).start()
    work = Path(tempfile.mkdtemp(prefix="postform-fleet-bench-"))
    relays: list[Relay] = []
    proxies: list[HaProxy] = []
    try:
        os.environ["POSTFORM_PG_DSN"] = cluster.create_database("bench")
        cred_e, ctx = project(work / "embedded", "bench_embedded", "embedded")
        cred_p, _ = project(work / "shared1", "bench_shared", "postgres")
        twin(work / "shared1", work / "shared2")
        shutil.copy2(work / "embedded" / "tls.crt", work / "shared1" / "tls.crt")
        shutil.copy2(work / "embedded" / "tls.key", work / "shared1" / "tls.key")
        shutil.copy2(work / "embedded" / "tls.crt", work / "shared2" / "tls.crt")
        shutil.copy2(work / "embedded" / "tls.key", work / "shared2" / "tls.key")

        ports = {k: free_port() for k in ("e", "p1", "p1x", "p2x")}
        embedded = Relay(work / "embedded", [f"127.0.0.1:{ports['e']}/starttls"])
        shared1 = Relay(
            work / "shared1",
            [f"127.0.0.1:{ports['p1']}/starttls", f"127.0.0.1:{ports['p1x']}/starttls+proxy"],
        )
        shared2 = Relay(work / "shared2", [f"127.0.0.1:{ports['p2x']}/starttls+proxy"])
        relays = [embedded, shared1, shared2]
        for relay, port in zip(relays, (ports["e"], ports["p1"], ports["p2x"]), strict=True):
            wait_port(port, relay.proc)
        one_lb = HaProxy(work / "lb1", [ports["p1x"]]).start()
        two_lb = HaProxy(work / "lb2", [ports["p1x"], ports["p2x"]]).start()
        proxies = [one_lb, two_lb]

        scenarios = {
            "one relay, embedded store (base)": (ports["e"], [embedded], cred_e),
            "one relay, shared store": (ports["p1"], [shared1], cred_p),
            "one relay, shared, via HAProxy": (one_lb.port, [shared1], cred_p),
            "two relays, shared, via HAProxy": (two_lb.port, [shared1, shared2], cred_p),
        }
        fleet_sent = 0  # what the shared relays accepted today: the store must agree
        for port, members, cred in scenarios.values():  # warm-up: keys, first sessions
            warm = measure(port, members, ctx, cred, argparse.Namespace(sessions=2, messages=5))
            fleet_sent += warm.sent if cred is cred_p else 0
        results: dict[str, list[Result]] = {name: [] for name in scenarios}
        for rep in range(args.repeat):
            names = list(scenarios) if rep % 2 == 0 else list(reversed(scenarios))
            for name in names:
                port, members, cred = scenarios[name]
                result = measure(port, members, ctx, cred, args)
                results[name].append(result)
                fleet_sent += result.sent if cred is cred_p else 0
        report(results, args)
        limit_phase(work, cluster, [shared1, shared2], two_lb.port, ctx, cred_p, args, fleet_sent)
    finally:
        for proxy in proxies:
            proxy.stop()
        for relay in relays:
            relay.stop()
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(results: dict[str, list[Result]], args: argparse.Namespace) -> None:
    print(
        f"relay fleet: {args.sessions} sessions x up to {args.messages} messages (2 KB, "
        f"ed25519) each, median of {args.repeat} interleaved runs, {os.cpu_count()} cores\n"
    )
    print(f"{'scenario':36} {'msg/s':>8} {'vs base':>8} {'relay CPU ms/msg':>17}")
    base = statistics.median(r.rate for r in results["one relay, embedded store (base)"])
    for name, rows in results.items():
        rate = statistics.median(r.rate for r in rows)
        cpu = statistics.median(r.server_cpu_ms for r in rows)
        print(f"{name:36} {rate:8.0f} {rate / base:8.2f} {cpu:17.2f}")
    shared = statistics.median(r.rate for r in results["one relay, shared store"])
    cost = 1 - shared / base
    print(
        f"\ntarget: the shared store costs a relay <= 10 %: {cost:+.1%} -> "
        f"{'MET' if cost <= 0.10 else 'NOT MET'}"
    )


def limit_phase(
    work: Path,
    cluster: PgCluster,
    relays: list[Relay],
    port: int,
    ctx: ssl.SSLContext,
    cred: dict[str, str],
    args: argparse.Namespace,
    fleet_sent: int,
) -> None:
    """Leases held under the old limit are counted as used already, so the day's
    total, not this phase's, is what must stay within the limit."""
    used = used_today(cluster, "bench", "bench_shared")
    limit = used + LIMIT_EXTRA
    before = relays[0].serial()
    folder = work / "shared1"
    (folder / "postform.yaml").write_text(config("bench_shared", "postgres", per_day=limit))
    subprocess.run([POSTFORM, "apply", "--auto-approve"], cwd=folder, check=True,
                   capture_output=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not all(r.serial() > before for r in relays):
        if time.monotonic() > deadline:
            raise RuntimeError("the relays did not follow the new limit within 30 s")
        time.sleep(0.2)
    result = measure(port, relays, ctx, cred, args)
    for relay in relays:
        relay.stop()  # a stopped relay gives back what it leased and did not use
    total = fleet_sent + result.sent
    counted = used_today(cluster, "bench", "bench_shared")
    print(
        f"\nlimit under load (two relays via HAProxy): recipients_per_day set to {limit:,} "
        f"({used:,} used + {LIMIT_EXTRA:,}); {result.sent + result.refused:,} attempts, "
        f"{result.sent:,} accepted, {result.refused:,} refused (452)\n"
        f"accepted today by the fleet: {total:,}; the store counts {counted:,} used\n"
        f"limit held (accepted <= limit): {'YES' if total <= limit else 'NO'}; "
        f"every recipient counted once (store == accepted): {'YES' if counted == total else 'NO'}"
    )


if __name__ == "__main__":
    sys.exit(main())
