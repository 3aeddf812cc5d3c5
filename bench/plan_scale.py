"""How `postform plan` scales with the number of approved senders.

For each size N, one postform.yaml with N approved senders spread over 1,000
domains (one Ed25519 DKIM selector each) is written twice, to two temporary
directories with identical text:

* ``empty/``: no state file, so the plan creates every resource;
* ``applied/``: a state made by applying that plan, so the plan is empty.

Three figures are timed, interleaved (baseline, plan-empty, plan-noop; the
order rotates each repetition) and the median of the repetitions is kept:

* parse: ``yaml.load(text, Loader=yaml.CSafeLoader)`` on the same text, the
  floor any YAML-based tool pays;
* plan-empty / plan-noop: what ``postform plan`` does, minus the CLI:
  ``Manager.load`` + ``Manager.plan`` (config, state, diff) + ``render_text``.

The target is a plan at most 1.5x the bare parse at 100k senders.

Then, as commands on the applied project, one approved sender is added and removed again
``--repeat`` times: ``postform plan`` and ``postform apply --auto-approve`` of each change
are timed (the median of each), the apply-of-one-change line (target: apply at most
1.3x its plan at 1,000 domains).

Run from the repository root:

    .venv/bin/python bench/plan_scale.py [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from reconciler.apply import apply_plan
from reconciler.manager import Manager
from reconciler.planner import make_plan
from reconciler.render.text import render_text

DOMAINS = 1_000
DEFAULT_SIZES = (1_000, 10_000, 100_000)
TARGET_SIZE = 100_000
TARGET_RATIO = 1.5
APPLY_TARGET = 1.3
POSTFORM = str(Path(sys.executable).parent / "postform")
STATE_REL = ".postform/state.json"


def domain_name(d: int) -> str:
    return f"d{d:04d}.bench.example"


def config_text(senders: int, domains: int = DOMAINS) -> str:
    """A valid postform.yaml: `senders` approved senders over `domains` domains.

    Every tenth sender uses the mapping form with a description, the rest the
    plain string form, so both shapes the schema allows are exercised.
    """
    lines = [
        "version: 1",
        "state:",
        "  backend: local",
        f"  path: {STATE_REL}",
        "relay:",
        "  hostname: smtp.bench.example",
        "  spf_domain: _spf.bench.example",
        "  ipv4: [192.0.2.10]",
        "limits:",
        f"  max_approved_senders: {max(200_000, senders)}",
        "domains:",
    ]
    for d in range(domains):
        lines += [
            f"  {domain_name(d)}:",
            "    dkim:",
            "      - {selector: bench-20260101, algorithm: ed25519}",
            "    dmarc: {policy: none}",
        ]
    lines.append("senders:")
    for i in range(senders):
        address = f"user{i:06d}@{domain_name(i % domains)}"
        if i % 10 == 0:
            lines.append(f"  - {{address: {address}, description: sender {i}}}")
        else:
            lines.append(f"  - {address}")
    lines += [
        "users:",
        "  app:",
        f"    senders: [{'user000000@' + domain_name(0)}]",
        "suppressions:",
        "  - {address: blocked@example.org, reason: manual}",
    ]
    return "\n".join(lines) + "\n"


def plan_once(config_path: Path) -> str:
    """What `postform plan` does for `config_path`, minus typer and stdout."""
    return render_text(Manager.load(config_path).plan())


def apply_all(config_path: Path) -> int:
    """Apply the config to a fresh state (real Ed25519 keys); the resource count."""
    manager = Manager.load(config_path)
    state = manager.state()
    new_state, _ = apply_plan(make_plan(manager.config, state), state, manager.write, _quiet)
    return len(new_state.resources)


def _quiet(_line: str) -> None:
    return None


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` takes, after a collection so garbage left by
    the previous measurement is not charged to this one."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@dataclass(frozen=True)
class Row:
    size: int
    parse: float
    empty: float
    noop: float
    changes: int

    @property
    def empty_ratio(self) -> float:
        return self.empty / self.parse

    @property
    def noop_ratio(self) -> float:
        return self.noop / self.parse


def measure(size: int, repeat: int, root: Path) -> Row:
    text = config_text(size)
    empty_dir, applied_dir = root / f"n{size}-empty", root / f"n{size}-applied"
    for d in (empty_dir, applied_dir):
        d.mkdir()
        (d / "postform.yaml").write_text(text, encoding="utf-8")
    empty_cfg, applied_cfg = empty_dir / "postform.yaml", applied_dir / "postform.yaml"

    setup = time.perf_counter()
    resources = apply_all(applied_cfg)
    print(
        f"  N={size:,}: {len(text) / 1e6:.1f} MB of YAML, {resources:,} resources applied "
        f"in {time.perf_counter() - setup:.1f}s",
        file=sys.stderr,
    )
    # Sanity: the two plans really are "all creates" and "no changes".
    assert "No changes." in plan_once(applied_cfg), "applied state should give an empty plan"
    assert f"Plan: {resources} to add" in plan_once(empty_cfg), "empty state should create all"

    runs: dict[str, Callable[[], object]] = {
        "parse": lambda: yaml.load(text, Loader=yaml.CSafeLoader),
        "empty": lambda: plan_once(empty_cfg),
        "noop": lambda: plan_once(applied_cfg),
    }
    order = list(runs)
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for rep in range(repeat):
        shift = rep % len(order)
        for kind in order[shift:] + order[:shift]:
            samples[kind].append(timed(runs[kind]))
    med = {k: statistics.median(v) for k, v in samples.items()}
    return Row(size, med["parse"], med["empty"], med["noop"], resources)


def command_seconds(folder: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([POSTFORM, *args], cwd=folder, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def measure_apply(size: int, repeat: int, root: Path) -> tuple[float, float]:
    """Median seconds of `postform plan` and of `postform apply --auto-approve` for a
    one-sender change (added, then removed again), on the applied project of `size`."""
    folder = root / f"n{size}-applied"
    config = folder / "postform.yaml"
    base = config.read_text()
    added = base.replace("senders:\n", f"senders:\n  - added@{domain_name(0)}\n", 1)
    plans, applies = [], []
    for _ in range(repeat):
        for text in (added, base):
            config.write_text(text)
            plans.append(command_seconds(folder, "plan"))
            applies.append(command_seconds(folder, "apply", "--auto-approve"))
    return statistics.median(plans), statistics.median(applies)


def startup_seconds(repeat: int) -> float:
    """Median seconds of `postform --help`: the command's own start-up, in every figure
    measured as a command above."""
    with tempfile.TemporaryDirectory() as tmp:
        return statistics.median(command_seconds(Path(tmp), "--help") for _ in range(repeat))


def print_applies(applies: dict[int, tuple[float, float]], startup: float) -> None:
    print(f"command start-up (`postform --help`): {startup * 1e3:.0f} ms")
    print(f"apply of a one-sender change, as commands ({DOMAINS:,} domains):")
    for size, (plan, apply) in sorted(applies.items()):
        verdict = "MET" if apply / plan <= APPLY_TARGET else "NOT MET"
        print(
            f"  N={size:>7,}: plan {plan * 1e3:7.0f} ms, apply {apply * 1e3:7.0f} ms = "
            f"{apply / plan:.2f}x its plan (target <= {APPLY_TARGET:g}x) -> {verdict}"
        )
    print()


def print_table(rows: list[Row], repeat: int) -> None:
    """The table; `us/sender` is time / N, `marginal` is the slope from the
    previous size, (t(N) - t(N_prev)) / (N - N_prev), which is flat when the
    cost is linear in senders (the 1,000 domains are a fixed cost that
    dominates us/sender at small N)."""
    print(
        f"postform plan scaling: {DOMAINS:,} domains (1 ed25519 selector each), "
        f"median of {repeat} interleaved run(s)"
    )
    print(f"python {sys.version.split()[0]}, PyYAML {yaml.__version__} (CSafeLoader)")
    print()
    head = (
        f"{'N':>8} {'parse ms':>9} {'plan-empty ms':>13} {'ratio':>6} "
        f"{'plan-noop ms':>12} {'ratio':>6}   {'us/sender p/e/n':<17} {'marginal p/e/n':<17}"
    )
    print(head.rstrip())
    print("-" * len(head.rstrip()))
    prev: Row | None = None
    for r in rows:
        times = (r.parse, r.empty, r.noop)
        per = "/".join(f"{1e6 * t / r.size:.1f}" for t in times)
        marginal = "-"
        if prev is not None and r.size > prev.size:
            before = (prev.parse, prev.empty, prev.noop)
            marginal = "/".join(
                f"{1e6 * (t - b) / (r.size - prev.size):.1f}"
                for t, b in zip(times, before, strict=True)
            )
        line = (
            f"{r.size:>8,} {1e3 * r.parse:>9.1f} {1e3 * r.empty:>13.1f} {r.empty_ratio:>6.2f} "
            f"{1e3 * r.noop:>12.1f} {r.noop_ratio:>6.2f}   {per:<17} {marginal:<17}"
        )
        print(line.rstrip())
        prev = r
    print()


def print_verdict(rows: list[Row]) -> bool:
    """Report the target for the 100k row (or the largest size run); True if met."""
    target = next((r for r in rows if r.size == TARGET_SIZE), None)
    if target is None:
        target = max(rows, key=lambda r: r.size)
        print(f"note: N={TARGET_SIZE:,} not run; judging the largest size, N={target.size:,}")
    ok = True
    for label, ratio in (
        ("plan (empty state, all creates)", target.empty_ratio),
        ("plan (applied state, no changes)", target.noop_ratio),
    ):
        met = ratio <= TARGET_RATIO
        ok = ok and met
        verdict = "MET" if met else "NOT MET"
        print(
            f"target ratio <= {TARGET_RATIO:g} at N={target.size:,}: {label}: "
            f"{ratio:.2f}x -> {verdict}"
        )
    return ok


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        msg = f"not a comma-separated list of integers: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated sender counts (default: 1000,10000,100000)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="interleaved repetitions per figure; the median is reported (default: 3)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="postform-bench-") as tmp:
        root = Path(tmp)
        # Warm-up, untimed: imports, the compiled schema validator, regex caches.
        warm = root / "warm"
        warm.mkdir()
        (warm / "postform.yaml").write_text(config_text(10, domains=2), encoding="utf-8")
        plan_once(warm / "postform.yaml")
        applies = {}
        for size in sorted(args.sizes):
            rows.append(measure(size, args.repeat, root))
            applies[size] = measure_apply(size, args.repeat, root)
    print(f"  total {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print_table(rows, args.repeat)
    print_applies(applies, startup_seconds(args.repeat))
    print_verdict(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
