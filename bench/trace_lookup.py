"""How long `postform relay trace` takes to find one message among a million events.

    .venv/bin/python bench/trace_lookup.py [--events 1000000] [--repeat 10] [--fleet]

Writes `--events` event lines the way the relay does (an accepted line and a delivered
line per message, each with its recipient), indexes them once (timed: what the first
trace after a long run pays), then looks up `--repeat` random recipients, Message-IDs
and queue IDs, each through a fresh EventIndex that first brings itself up to date (as
the command does), and prints the median and worst lookup. The baseline, measured in
the same run, is a plain scan of the event file for the same recipient: what grep
costs. Every loop is bounded by `--events` and `--repeat`.

`--fleet` also loads the same events into a fleet's shared table (relay_events, in a
throwaway PostgreSQL cluster on a loopback port, as tests/pgcluster.py makes it) and
times the same lookups through FleetEvents, what `relay trace` uses in a fleet.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from relay.eventindex import EventIndex

FLEET_BATCH = 20_000


def write_events(folder: Path, messages: int) -> None:
    with (folder / "events.jsonl").open("w") as out:
        for i in range(messages):
            ts = f"2026-11-{1 + i * 28 // messages:02d}T12:00:00.{i % 1000:03d}+00:00"
            rcpt = f"user{i}@example.org"
            accepted = {
                "ts": ts,
                "event": "accepted",
                "queue_id": f"q{i:012d}",
                "sender": "noreply@example.com",
                "rcpt_tos": [rcpt],
                "message_id": f"<m{i}@app.example.com>",
                "recipients": 1,
            }
            delivered = {
                "ts": ts,
                "event": "delivered",
                "queue_id": f"q{i:012d}",
                "recipient": rcpt,
                "host": "mx.example.org",
                "reply": "250 2.0.0 Ok",
            }
            out.write(json.dumps(accepted, separators=(",", ":")) + "\n")
            out.write(json.dumps(delivered, separators=(",", ":")) + "\n")


def lookup(folder: Path, query: str) -> float:
    started = time.perf_counter()
    index = EventIndex(folder, retention_days=3650)
    index.update()
    found = [index.events(q) for q in index.queue_ids(query)]
    index.close()
    assert found and found[0], query
    return time.perf_counter() - started


def fleet_lookups(folder: Path, picks: list[int]) -> tuple[float, dict[str, list[float]]]:
    """Load the event file into a fleet table; time the same lookups there."""
    import os

    import psycopg

    from reconciler.state.pgschema import ensure_schema
    from relay.fleetevents import FleetEvents
    from relay.store import pgevents
    from relay.store.pgruntime import PgTarget
    from tests.pgcluster import PgCluster

    cluster = PgCluster().start()
    try:
        os.environ["POSTFORM_BENCH_DSN"] = dsn = cluster.create_database("trace")
        started = time.perf_counter()
        with psycopg.connect(dsn, autocommit=True) as conn:
            ensure_schema(conn, "postform")
            with (folder / "events.jsonl").open() as events:
                batch: list[tuple[object, ...]] = []
                for line in events:
                    row = pgevents.row_of("production", "bench:/relay", json.loads(line))
                    batch.extend([row] if row is not None else [])
                    if len(batch) >= FLEET_BATCH:
                        pgevents.insert(conn, "postform", batch)
                        batch.clear()
                pgevents.insert(conn, "postform", batch)
            conn.execute("ANALYZE postform.relay_events")
        loaded = time.perf_counter() - started
        target = PgTarget("POSTFORM_BENCH_DSN", "postform", "production")

        def timed(query: str) -> float:
            began = time.perf_counter()
            fleet = FleetEvents(target)  # a connection each, as each command makes one
            found = [fleet.events(q) for q in fleet.queue_ids(query)]
            fleet.close()
            assert found and found[0], query
            return time.perf_counter() - began

        return loaded, {
            "recipient": [timed(f"user{i}@example.org") for i in picks],
            "Message-ID": [timed(f"<m{i}@app.example.com>") for i in picks],
            "queue ID": [timed(f"q{i:012d}") for i in picks],
        }
    finally:
        cluster.destroy()


def scan(folder: Path, needle: str) -> float:
    started = time.perf_counter()
    with (folder / "events.jsonl").open() as events:
        hits = [line for line in events if needle in line]
    assert hits
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--fleet", action="store_true", help="also a fleet's shared table")
    args = parser.parse_args()
    messages = max(1, args.events // 2)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="postform-trace-") as tmp:
        folder = Path(tmp)
        write_events(folder, messages)
        started = time.perf_counter()
        index = EventIndex(folder, retention_days=3650)
        added = index.update()
        index.close()
        first = time.perf_counter() - started
        picks = [rng.randrange(messages) for _ in range(args.repeat)]
        kinds = {
            "recipient": [lookup(folder, f"user{i}@example.org") for i in picks],
            "Message-ID": [lookup(folder, f"<m{i}@app.example.com>") for i in picks],
            "queue ID": [lookup(folder, f"q{i:012d}") for i in picks],
        }
        scans = [scan(folder, f'"user{i}@example.org"') for i in picks[:3]]
        fleet = fleet_lookups(folder, picks) if args.fleet else None
    print(f"events: {added:,} indexed in {first:.1f}s (once, incrementally afterwards)")
    base = statistics.median(scans)
    print(f"baseline, a scan of the event file: median {base * 1e3:.0f} ms")
    for kind, times in kinds.items():
        med = statistics.median(times)
        print(
            f"lookup by {kind:<10}: median {med * 1e3:.1f} ms, worst {max(times) * 1e3:.1f} ms "
            f"over {len(times)} ({base / med:.0f}x faster than the scan)"
        )
    if fleet is not None:
        print(f"fleet table: {added:,} events loaded in {fleet[0]:.1f}s (COPY, indexes built)")
        for kind, times in fleet[1].items():
            med = statistics.median(times)
            print(
                f"fleet lookup by {kind:<10}: median {med * 1e3:.1f} ms, worst "
                f"{max(times) * 1e3:.1f} ms over {len(times)} (connection included)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
