"""How long `postform relay trace` takes to find one message among a million events.

    .venv/bin/python bench/trace_lookup.py [--events 1000000] [--repeat 10]

Writes `--events` event lines the way the relay does (an accepted line and a delivered
line per message, each with its recipient), indexes them once (timed: what the first
trace after a long run pays), then looks up `--repeat` random recipients, Message-IDs
and queue IDs, each through a fresh EventIndex that first brings itself up to date (as
the command does), and prints the median and worst lookup. The baseline, measured in
the same run, is a plain scan of the event file for the same recipient: what grep
costs. Only local files; every loop is bounded by `--events` and `--repeat`.
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
    print(f"events: {added:,} indexed in {first:.1f}s (once, incrementally afterwards)")
    base = statistics.median(scans)
    print(f"baseline, a scan of the event file: median {base * 1e3:.0f} ms")
    for kind, times in kinds.items():
        med = statistics.median(times)
        print(
            f"lookup by {kind:<10}: median {med * 1e3:.1f} ms, worst {max(times) * 1e3:.1f} ms "
            f"over {len(times)} ({base / med:.0f}x faster than the scan)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
