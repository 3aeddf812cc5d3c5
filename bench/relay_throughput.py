"""Relay throughput over STARTTLS + AUTH PLAIN, DKIM signing and the fsync'ed spool,
against aiosmtpd with a do-nothing handler over the same kind of sessions, in one run.

    .venv/bin/python bench/relay_throughput.py [--sessions 20] [--messages 150] [--repeat 3]

Each scenario runs `--sessions` concurrent client sessions (aiosmtplib), each sending up
to `--messages` 2 KB messages on one authenticated TLS session; every loop is bounded
in count and time. Servers run as separate processes on loopback; the client's own CPU
is reported because on 2 cores it competes with the server. Prints medians of
interleaved repetitions and the ratio to the do-nothing baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import trustme

ROOT = Path(__file__).resolve().parent.parent
POSTFORM = str(Path(sys.executable).parent / "postform")
RUN_LIMIT_S = 60.0
TARGET_MSGS = 300.0

CONFIG = """\
version: 1
state: {path: state/state.json}
relay:
  hostname: relay.bench
  tls: {cert: tls.crt, key: tls.key}
  # Submission alone: nothing delivers here, so the queue's backpressure is off.
  delivery: {backlog_slow: 0, backlog_max: 0}
limits: {messages_per_minute: 10000000, recipients_per_day: 100000000}
domains:
  ed.example: {dkim: [{selector: s1, algorithm: ed25519, activation: immediate}]}
  rsa.example: {dkim: [{selector: s1, algorithm: rsa-2048, activation: immediate}]}
senders: [app@ed.example, app@rsa.example]
users:
  bench: {credentials: [load]}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(sender: str) -> bytes:
    head = (
        f"From: {sender}\r\nTo: reader@example.org\r\nSubject: load\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
    )
    line = "The quick brown fox jumps over the lazy dog, again and again. 0123456789\r\n"
    text = head + line * ((2048 - len(head)) // len(line) + 1)
    return text[:2046].encode() + b"\r\n"


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def make_project(work: Path, config: str) -> tuple[dict[str, str], ssl.SSLContext]:
    """Write a per-run CA's certificate and `config` into `work`, apply it; return the
    SMTP credential and a client TLS context that trusts the certificate."""
    ca = trustme.CA()
    cert = ca.issue_cert("relay.bench", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(work / "tls.key"))
    cert.cert_chain_pems[0].write_to_path(str(work / "tls.crt"))
    (work / "postform.yaml").write_text(config)
    subprocess.run(
        [POSTFORM, "apply", "--auto-approve", "--credentials-out", "creds.json"],
        cwd=work,
        check=True,
        capture_output=True,
    )
    cred = json.loads((work / "creds.json").read_text())[0]
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.check_hostname = False
    return cred, ctx


def cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and its live children (relay worker processes)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    pids.append(int(entry.name))
            except (OSError, IndexError):
                continue
    total = 0
    for p in pids:
        try:
            fields = _stat(p)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not listen")


NOOP_SERVER = r"""
import asyncio, ssl, sys, logging, warnings
from aiosmtpd.smtp import SMTP, AuthResult
warnings.filterwarnings("ignore")
logging.getLogger("mail.log").setLevel(logging.ERROR)
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.minimum_version = ssl.TLSVersion.TLSv1_2
ctx.load_cert_chain(cert, key)
class Noop:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 OK"
def accept(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)
async def main():
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(Noop(), hostname="noop.bench", tls_context=ctx,
        auth_required=True, authenticator=accept, data_size_limit=2097152), "127.0.0.1", port)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@dataclass
class Result:
    rate: float
    sent: int
    seconds: float
    server_cpu: float
    client_cpu: float


async def one_session(
    port: int,
    ctx: ssl.SSLContext,
    user: str,
    password: str,
    sender: str,
    count: int,
    deadline: float,
) -> int:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
    await client.connect()
    await client.starttls(tls_context=ctx)
    await client.login(user, password)
    data = body(sender)
    sent = 0
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        errors, _ = await client.sendmail(sender, ["reader@example.org"], data)
        if not errors:
            sent += 1
    await client.quit()
    return sent


async def load(
    port: int,
    ctx: ssl.SSLContext,
    user: str,
    password: str,
    sender: str,
    sessions: int,
    messages: int,
) -> tuple[int, float]:
    deadline = time.monotonic() + RUN_LIMIT_S
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(
            one_session(port, ctx, user, password, sender, messages, deadline)
            for _ in range(sessions)
        )
    )
    return sum(counts), time.perf_counter() - started


def measure(
    proc: subprocess.Popen[bytes],
    port: int,
    ctx: ssl.SSLContext,
    user: str,
    password: str,
    sender: str,
    sessions: int,
    messages: int,
) -> Result:
    cpu0, client0 = cpu_seconds(proc.pid), time.process_time()
    sent, seconds = asyncio.run(load(port, ctx, user, password, sender, sessions, messages))
    server_cpu = cpu_seconds(proc.pid) - cpu0
    client_cpu = time.process_time() - client0
    return Result(sent / seconds, sent, seconds, server_cpu / seconds, client_cpu / seconds)


def with_webhooks(config: str, count: int) -> str:
    """`config` with `count` webhooks that want every event type. Nothing is delivered
    here, so none is sent: what is measured is what the outbox costs submission (the
    `accepted` line it records for the sender and Message-ID of later events)."""
    if count == 0:
        return config
    hooks = "".join(
        f"    - {{name: hook{i}, url: 'http://127.0.0.1:9/hook', secret_env: BENCH_HOOK_SECRET,"
        " events: [delivered, bounced, complaint, suppressed, deferred]}\n"
        for i in range(count)
    )
    anchor = "  delivery: {backlog_slow: 0, backlog_max: 0}\n"
    return config.replace(anchor, anchor + "  webhooks:\n" + hooks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=150, help="per session")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="relay worker processes")
    parser.add_argument(
        "--webhooks", type=int, default=0, help="webhooks wanting every event type (their cost)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="postform-bench-"))
    cred, ctx = make_project(work, with_webhooks(CONFIG, args.webhooks))

    relay_port, noop_port = free_port(), free_port()
    # Submission only: --no-delivery keeps the relay from looking up the recipients' MX
    # (this benchmark must talk to loopback only); bench/delivery_e2e.py measures delivery.
    relay_cmd = [
        POSTFORM,
        "relay",
        "serve",
        "--no-delivery",
        "--listen",
        f"127.0.0.1:{relay_port}/starttls",
    ]
    if args.workers > 1:
        relay_cmd += ["--workers", str(args.workers)]
    env = {**os.environ, "BENCH_HOOK_SECRET": "bench-secret"}
    relay = subprocess.Popen(relay_cmd, cwd=work, stderr=subprocess.DEVNULL, env=env)
    noop = subprocess.Popen(
        [
            sys.executable,
            "-c",
            NOOP_SERVER,
            str(noop_port),
            str(work / "tls.crt"),
            str(work / "tls.key"),
        ]
    )
    try:
        wait_port(relay_port, relay)
        wait_port(noop_port, noop)
        scenarios = {
            "aiosmtpd do-nothing (baseline)": (noop, noop_port, "app@ed.example"),
            "postform relay, ed25519 + spool": (relay, relay_port, "app@ed.example"),
            "postform relay, rsa-2048 + spool": (relay, relay_port, "app@rsa.example"),
        }
        # warm-up: key loading, first TLS sessions
        for proc, port, sender in scenarios.values():
            measure(proc, port, ctx, cred["username"], cred["password"], sender, 2, 5)
        results: dict[str, list[Result]] = {name: [] for name in scenarios}
        for _ in range(args.repeat):
            for name, (proc, port, sender) in scenarios.items():
                results[name].append(
                    measure(
                        proc,
                        port,
                        ctx,
                        cred["username"],
                        cred["password"],
                        sender,
                        args.sessions,
                        args.messages,
                    )
                )
        report(results, args)
        spooled = len(list((work / "state" / "relay" / "spool" / "queue").glob("*.msg")))
        print(f"\nmessages in the relay's spool after the run: {spooled}")
    finally:
        for proc in (relay, noop):
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def report(results: dict[str, list[Result]], args: argparse.Namespace) -> None:
    print(
        f"relay throughput: {args.sessions} sessions x up to {args.messages} messages "
        f"(2 KB) each, STARTTLS + AUTH PLAIN, median of {args.repeat} interleaved runs, "
        f"{os.cpu_count()} cores, relay workers: {args.workers}\n"
    )
    print(f"{'scenario':36} {'msg/s':>8} {'vs base':>8} {'server CPU':>11} {'client CPU':>11}")
    base = statistics.median(r.rate for r in results["aiosmtpd do-nothing (baseline)"])
    verdicts = []
    for name, rows in results.items():
        rate = statistics.median(r.rate for r in rows)
        server = statistics.median(r.server_cpu for r in rows)
        client = statistics.median(r.client_cpu for r in rows)
        print(f"{name:36} {rate:8.0f} {rate / base:8.2f} {server:10.0%} {client:10.0%}")
        if name.startswith("postform"):
            verdicts.append((name, rate, rate / base))
    print()
    for name, rate, ratio in verdicts:
        ok = rate >= TARGET_MSGS and ratio >= 0.5
        print(
            f"target >= {TARGET_MSGS:.0f} msg/s and >= 0.5x baseline: {name}: "
            f"{rate:.0f} msg/s, {ratio:.2f}x -> {'MET' if ok else 'NOT MET'}"
        )


if __name__ == "__main__":
    main()
