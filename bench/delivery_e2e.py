"""End to end: submission through the relay (STARTTLS + AUTH PLAIN, ed25519 DKIM, fsync'ed
spool) to delivery at a destination SMTP server (an aiosmtpd sink on loopback, reached as
the relay's smarthost), measured per message: latency from the client's send to the
sink's receipt, and throughput.

    .venv/bin/python bench/delivery_e2e.py [--sessions 10] [--messages 100]

Four runs, each with a fresh relay and sink: submission alone (`--no-delivery`: the
relay's CPU per accepted message; then the queue it left is delivered by `relay deliver
--until-empty`, timed), end to end at saturation, and paced at 100 and 200 msg/s. Each
prints the submission rate of the same run, the delivered rate, latency
p50/p95/p99, the SMTP sessions the sink saw per delivered message and the relay's CPU
per message (from /proc; delivery's share is the end-to-end CPU less submission's).

Every loop is bounded in count and time; only loopback is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
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
import relay_throughput as rt

RUN_LIMIT_S = 120.0

SINK = r"""
import asyncio, sys, time, logging
from aiosmtpd.controller import Controller
logging.getLogger("mail.log").setLevel(logging.ERROR)
out = open(sys.argv[2], "a", buffering=1)
sessions = open(sys.argv[3], "a", buffering=1)
class Sink:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        sessions.write("s\n")  # one EHLO per SMTP session the relay opened
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]  # as Postfix offers it
    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        sent = data.split(b"X-Bench-Sent: ", 1)[1].split(b"\r\n", 1)[0].decode()
        out.write(f"{time.time()} {sent}\n")
        return "250 2.0.0 OK"
c = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]), server_hostname="sink.bench")
c.start()
asyncio.run(asyncio.Event().wait())
"""

CONFIG = """\
version: 1
state: {{path: state/state.json}}
relay:
  hostname: relay.bench
  tls: {{cert: tls.crt, key: tls.key}}
  smarthost: {{host: 127.0.0.1, port: {sink_port}, tls: none}}
  delivery: {{concurrency: 20, per_destination: 20, retry_base: 1}}
limits: {{messages_per_minute: 10000000, recipients_per_day: 100000000}}
domains:
  ed.example: {{dkim: [{{selector: s1, algorithm: ed25519, activation: immediate}}]}}
senders: [app@ed.example]
users:
  bench: {{credentials: [load]}}
"""


async def session(
    port: int,
    ctx: ssl.SSLContext,
    cred: dict[str, str],
    count: int,
    deadline: float,
    every: float,
) -> int:
    """`count` messages on one session, one every `every` seconds (0: as fast as it goes)."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    await client.connect()
    await client.starttls(tls_context=ctx)
    await client.login(cred["username"], cred["password"])
    body = rt.body("app@ed.example")
    sent = 0
    start = time.monotonic()
    for n in range(count):
        if time.monotonic() > deadline:
            break
        if every:
            await asyncio.sleep(max(0.0, start + n * every - time.monotonic()))
        data = f"X-Bench-Sent: {time.time()}\r\n".encode() + body
        errors, _ = await client.sendmail("app@ed.example", ["reader@dest.example"], data)
        sent += not errors
    await client.quit()
    return sent


async def submit(
    port: int, ctx: ssl.SSLContext, cred: dict[str, str], sessions: int, messages: int, rate: float
) -> tuple[int, float]:
    deadline = time.monotonic() + RUN_LIMIT_S
    every = sessions / rate if rate else 0.0
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(session(port, ctx, cred, messages, deadline, every) for _ in range(sessions))
    )
    return sum(counts), time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    name: str
    sent: int
    seconds: float
    rows: list[tuple[float, float]]
    sessions: int
    cpu: float
    drain: tuple[int, float, float] | None = None  # delivered, seconds, CPU seconds


def run(args: argparse.Namespace, name: str, rate: float, deliver: bool) -> Run:
    work = Path(tempfile.mkdtemp(prefix="postform-e2e-"))
    sink_port, relay_port = rt.free_port(), rt.free_port()
    cred, ctx = rt.make_project(work, CONFIG.format(sink_port=sink_port))
    received, opened = work / "received.txt", work / "sessions.txt"
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(sink_port), str(received), str(opened)]
    )
    command = [rt.POSTFORM, "relay", "serve", "--listen", f"127.0.0.1:{relay_port}/starttls"]
    relay = subprocess.Popen(
        command + ([] if deliver else ["--no-delivery"]), cwd=work, stderr=subprocess.DEVNULL
    )
    try:
        rt.wait_port(sink_port, sink)
        rt.wait_port(relay_port, relay)
        cpu = cpu_seconds(relay.pid)
        sent, seconds = asyncio.run(
            submit(relay_port, ctx, cred, args.sessions, args.messages, rate)
        )
        rows = wait_delivered(received, sent if deliver else 0)
        cpu = cpu_seconds(relay.pid) - cpu
        sessions = len(opened.read_text().splitlines()) if opened.exists() else 0
        result = Run(name, sent, seconds, rows, sessions, cpu)
        if not deliver:  # the queue it left, delivered alone by `relay deliver`
            relay.terminate()
            relay.wait(30)
            result.drain = drain(work, received)
        return result
    finally:
        for proc in (relay, sink):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def drain(work: Path, received: Path) -> tuple[int, float, float]:
    """`postform relay deliver --until-empty` over the spooled queue: how many reached the
    sink, in how long, for how much CPU."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [rt.POSTFORM, "relay", "deliver", "--until-empty"],
        cwd=work,
        stderr=subprocess.DEVNULL,
        timeout=RUN_LIMIT_S,
        check=True,
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    count = len(received.read_text().splitlines()) if received.exists() else 0
    return count, seconds, cpu


def wait_delivered(received: Path, expected: int) -> list[tuple[float, float]]:
    deadline = time.monotonic() + RUN_LIMIT_S
    rows: list[tuple[float, float]] = []
    while expected and time.monotonic() < deadline:
        lines = received.read_text().splitlines() if received.exists() else []
        rows = [(float(a), float(b)) for a, b in (line.split() for line in lines)]
        if len(rows) >= expected:
            break
        time.sleep(0.05)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100, help="per session")
    args = parser.parse_args()
    print(
        f"end to end: {args.sessions} sessions x {args.messages} messages (2 KB), STARTTLS + "
        "AUTH PLAIN, ed25519 DKIM, fsync'ed spool, delivered to an aiosmtpd sink "
        "(smarthost) on loopback\n"
    )
    alone = run(args, "submission alone (no delivery)", 0, deliver=False)
    submit_cpu = alone.cpu / max(1, alone.sent)
    print(
        f"{alone.name}: {alone.sent / alone.seconds:.0f} msg/s accepted, relay CPU "
        f"{submit_cpu * 1000:.2f} ms per message"
    )
    if alone.drain is not None:
        count, seconds, cpu = alone.drain
        print(
            f"  then its queue delivered by `relay deliver --until-empty`: {count} in "
            f"{seconds:.2f} s = {count / seconds:.0f} msg/s (process start included), "
            f"CPU {cpu / max(1, count) * 1000:.2f} ms per message\n"
        )
    for name, rate in (("saturation", 0.0), ("paced 100 msg/s", 100.0), ("paced 200 msg/s", 200.0)):
        report(run(args, name, rate, deliver=True), submit_cpu)


def report(result: Run, submit_cpu: float) -> None:
    rows = result.rows
    if not rows:
        print(f"{result.name}: nothing delivered")
        return
    latencies = sorted(recv - sent_at for recv, sent_at in rows)
    first_sent = min(s for _, s in rows)
    last_recv = max(r for r, _ in rows)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    accepted = result.sent / result.seconds
    delivered = len(rows) / (last_recv - first_sent)
    total_cpu = result.cpu / len(rows)
    print(f"{result.name}:")
    print(f"  submitted {result.sent} in {result.seconds:.2f} s = {accepted:.0f} msg/s accepted")
    print(
        f"  delivered {len(rows)} of {result.sent}; end to end {delivered:.0f} msg/s "
        f"(first send to last receipt) = {delivered / accepted:.2f}x the submission rate"
    )
    print(
        f"  latency send -> sink: p50 {pct(0.50):.0f} ms, p95 {pct(0.95):.0f} ms, "
        f"p99 {pct(0.99):.0f} ms, max {latencies[-1] * 1000:.0f} ms, "
        f"mean {statistics.mean(latencies) * 1000:.0f} ms"
    )
    print(
        f"  SMTP sessions the relay opened to the sink: {result.sessions} = "
        f"{result.sessions / len(rows):.3f} per delivered message"
    )
    print(
        f"  relay CPU {total_cpu * 1000:.2f} ms per message: submission {submit_cpu * 1000:.2f}"
        f" + delivery {(total_cpu - submit_cpu) * 1000:.2f}"
        f" ({(total_cpu - submit_cpu) / submit_cpu:.2f}x submission's)\n"
    )


if __name__ == "__main__":
    main()
