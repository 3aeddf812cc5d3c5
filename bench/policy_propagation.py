"""How long a relay on another host takes to enforce an apply: from the moment the apply
returns to the relay's `policy_reloaded` event, over many applies.

A throwaway PostgreSQL cluster (fsync on, loopback); a relay (`postform relay serve`,
its own folder, only the YAML's state: settings) follows the state; applies are made
in-process from another folder, each toggling one approved sender. Both timestamps come
from this machine's clock (the event carries milliseconds).

    .venv/bin/python bench/policy_propagation.py [--applies 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reconciler.manager import ApplyRequest, Manager
from tests.pgcluster import PgCluster
from tests.relayproc import RELAY_CONFIG, RelayProcess

STATE = "state: {{backend: postgres, name: production, dsn_env: POSTFORM_PG_DSN}}\n"
TOGGLE = "  - toggle@example.com\n"
DEADLINE_S = 30.0  # per apply: a relay that never reloads fails the run, bounded


class QuietUI:
    def show_plan(self, plan: object) -> None: ...
    def confirm(self) -> bool:
        return True

    def progress(self, line: str) -> None: ...
    def info(self, text: str) -> None: ...
    def warn(self, text: str) -> None: ...
    def passwords(self, issued: object, written_to: object) -> None: ...


def reload_time(relay: RelayProcess, serial: int) -> float:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for event in relay.events("policy_reloaded"):
            if event.get("serial") == serial:
                return datetime.fromisoformat(event["ts"]).timestamp()
        time.sleep(0.005)
    raise SystemExit(f"the relay did not load serial {serial} within {DEADLINE_S:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--applies", type=int, default=50)
    args = parser.parse_args()
    cluster = PgCluster(durable=True).start()
    delays: list[float] = []
    try:
        os.environ["POSTFORM_PG_DSN"] = cluster.create_database("propagation")
        text = RELAY_CONFIG.replace("state: {{path: state/state.json}}\n", STATE).format(
            per_minute=18000, per_day=50000, max_bytes=2097152
        )
        with tempfile.TemporaryDirectory(prefix="postform-bench-") as tmp:
            relay = RelayProcess(Path(tmp) / "relay", config=text).start()
            ci = Path(tmp) / "ci"
            ci.mkdir()
            try:
                for n in range(args.applies):
                    body = (
                        text
                        if n % 2
                        else text.replace(
                            "  - noreply@example.com\n", "  - noreply@example.com\n" + TOGGLE
                        )
                    )
                    (ci / "postform.yaml").write_text(body)
                    state = Manager.load(ci / "postform.yaml").apply(
                        ApplyRequest(auto_approve=True), QuietUI()
                    )
                    applied = time.time()
                    delays.append(reload_time(relay, state.serial) - applied)
            finally:
                relay.stop()
    finally:
        cluster.destroy()
    ms = sorted(d * 1000 for d in delays)
    print(f"policy propagation over {len(ms)} applies (apply returned -> relay reloaded):")
    print(
        f"  median {statistics.median(ms):.0f} ms, p90 {ms[int(len(ms) * 0.9) - 1]:.0f} ms, "
        f"max {ms[-1]:.0f} ms, min {ms[0]:.0f} ms; target <= 2000 ms: "
        f"{'MET' if ms[-1] <= 2000 else 'NOT MET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
