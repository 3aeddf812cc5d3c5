"""plan and apply on the local backend against the same on PostgreSQL, in one run.

For N approved senders (default 10,000 over 1,000 domains, one Ed25519 selector each;
the config of bench/plan_scale.py), per backend, interleaved and repeated:

* apply-all: the first apply of the config (every resource created, 1,000 keys made);
* plan: a plan with no changes against that state;
* apply-one: an apply that adds one sender (the state written again, the policy published).

Timed in-process through the Manager (what the commands call), without the CLI's start-up.
PostgreSQL is a throwaway cluster with fsync on, on a loopback port (initdb as a non-root
user, Debian's server binaries), as tests/pgcluster.py makes it. Prints medians and the
ratio postgres / local.

    .venv/bin/python bench/state_backends.py [--senders 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import plan_scale as ps

from reconciler.manager import ApplyRequest, Manager
from reconciler.render.text import render_text
from tests.pgcluster import PgCluster

LOCAL_STATE = f"state:\n  backend: local\n  path: {ps.STATE_REL}\n"


class QuietUI:
    def show_plan(self, plan: object) -> None: ...
    def confirm(self) -> bool:
        return True

    def progress(self, line: str) -> None: ...
    def info(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def passwords(self, issued: object, written_to: object) -> None: ...


def write_config(folder: Path, senders: int, state_block: str, extra: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = ps.config_text(senders + extra).replace(LOCAL_STATE, state_block)
    path = folder / "postform.yaml"
    path.write_text(text)
    return path


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(backend: str, folder: Path, senders: int, rep: int) -> dict[str, float]:
    state = (
        LOCAL_STATE
        if backend == "local"
        else f"state:\n  backend: postgres\n  name: bench{rep}\n  dsn_env: POSTFORM_PG_DSN\n"
    )
    config = write_config(folder, senders, state)
    apply = ApplyRequest(auto_approve=True)
    out = {"apply-all": timed(lambda: Manager.load(config).apply(apply, QuietUI()))}
    out["plan"] = timed(lambda: render_text(Manager.load(config).plan()))
    write_config(folder, senders, state, extra=1)
    out["apply-one"] = timed(lambda: Manager.load(config).apply(apply, QuietUI()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cluster = PgCluster(durable=True).start()
    results: dict[str, dict[str, list[float]]] = {"local": {}, "postgres": {}}
    try:
        dbname = "bench"
        os.environ["POSTFORM_PG_DSN"] = cluster.create_database(dbname)
        with tempfile.TemporaryDirectory(prefix="postform-bench-") as tmp:
            for rep in range(args.repeat):
                order = ("local", "postgres") if rep % 2 == 0 else ("postgres", "local")
                for backend in order:
                    figures = run(backend, Path(tmp) / f"{backend}{rep}", args.senders, rep)
                    for key, value in figures.items():
                        results[backend].setdefault(key, []).append(value)
    finally:
        cluster.destroy()
    report(results, args)
    return 0


def report(results: dict[str, dict[str, list[float]]], args: argparse.Namespace) -> None:
    print(
        f"state backends: {args.senders:,} senders over {ps.DOMAINS:,} domains, "
        f"median of {args.repeat} interleaved runs (PostgreSQL with fsync on, loopback)\n"
    )
    print(f"{'step':<12}{'local ms':>10}{'postgres ms':>13}{'pg / local':>12}")
    for step in ("apply-all", "plan", "apply-one"):
        local = statistics.median(results["local"][step]) * 1000
        pg = statistics.median(results["postgres"][step]) * 1000
        print(f"{step:<12}{local:>10.0f}{pg:>13.0f}{pg / local:>12.2f}")


if __name__ == "__main__":
    sys.exit(main())
