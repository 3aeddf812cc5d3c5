"""What a dashboard rebuild costs, and what it does to the relay's event loop.

    .venv/bin/python bench/dashboard_build.py [--events 250000] [--repeat 3]

Writes `--events` event lines the way the relay does (as bench/trace_lookup.py: an
accepted and a delivered line per message; 250,000 is about what the relay's rotated
files hold, 5 x 10 MB), then, `--repeat` times each, interleaved:
- builds the dashboard's data in this process on a thread (what `relay report` does, and
  what the served dashboard did), while an asyncio loop in this process ticks every
  millisecond, as the relay's SMTP sessions would;
- builds it with `build_apart` (a spawned child process, what the served dashboard does
  now) while the same loop ticks.
The loop does 0.2 ms of Python per step, as an SMTP command costs the relay, and yields:
the steps it gets done per second while a rebuild runs, against the same loop with no
rebuild (the baseline of the same run), is the share of the relay's throughput a
rebuild leaves it, and the longest gap between two steps is what one command waited.
Local files only; every loop is bounded by the build's end and a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from trace_lookup import write_events

from relay.contract.policy import RelayPolicy
from relay.dashboard import build, build_apart, local_source

LIMIT_S = 300.0


@dataclass
class Run:
    seconds: float
    steps_per_s: float
    longest_gap_ms: float


STEP_S = 0.0002


def step() -> None:
    """0.2 ms of pure Python, as a relay's SMTP command costs."""
    end = time.perf_counter() + STEP_S
    while time.perf_counter() < end:
        pass


async def ticking(work: Callable[[], object] | None, seconds: float = 2.0) -> Run:
    """Step the loop while `work` runs on a thread (or for `seconds` with no work)."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    job = loop.run_in_executor(None, work) if work is not None else None
    steps, longest, last = 0, 0.0, started
    while time.perf_counter() - started < (LIMIT_S if job else seconds):
        if job is not None and job.done():
            break
        step()
        await asyncio.sleep(0)
        now = time.perf_counter()
        steps, longest, last = steps + 1, max(longest, now - last), now
    if job is not None:
        await job
    took = time.perf_counter() - started
    return Run(took, steps / took, longest * 1e3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=250_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    policy = RelayPolicy(serial=1, lineage="bench")
    since = datetime(2026, 11, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory(prefix="postform-dash-") as tmp:
        folder = Path(tmp)
        write_events(folder, max(1, args.events // 2))
        works: dict[str, Callable[[], object] | None] = {
            "no rebuild": None,
            "in-process": lambda: build(local_source(folder), folder, policy, since=since),
            "apart": lambda: build_apart(folder, None, policy, since),
        }
        runs: dict[str, list[Run]] = {name: [] for name in works}
        for _ in range(args.repeat):
            for name, work in works.items():
                runs[name].append(asyncio.run(ticking(work)))
    print(
        f"dashboard rebuild over {args.events:,} events, median of {args.repeat} interleaved; "
        f"an event loop in the same process doing {STEP_S * 1e3:g} ms steps meanwhile"
    )
    base = statistics.median(r.steps_per_s for r in runs["no rebuild"])
    for name, got in runs.items():
        took = statistics.median(r.seconds for r in got)
        rate = statistics.median(r.steps_per_s for r in got)
        gap = statistics.median(r.longest_gap_ms for r in got)
        print(
            f"  {name:<11} {took:6.2f} s: loop steps {rate:7.0f}/s = {rate / base:.2f}x "
            f"the baseline, longest gap {gap:6.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
