"""What a plan reads beside the config and the stored state: facts it shows and never
changes (a new state, the suppressions the relay learned) and what the DKIM retirement
rules need (the time, the retention, the messages in this host's queue)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from reconciler import retirement
from reconciler.state.model import State


def plan_facts(state: State, where: str, data_dir: Path, retention_days: float) -> dict[str, Any]:
    """make_plan's `runtime` and `retirement` arguments. `where` describes the state's
    backend; `data_dir` is this host's relay data folder, read only."""
    from relay.spool import queued_signatures  # the relay's spool and store, read-only
    from relay.store.sqlite import learned_count

    runtime: dict[str, Any] = {}
    if not state.exists:
        runtime["new_state"] = where
    learned = learned_count(data_dir)
    if learned is not None:
        runtime["learned_suppressions"] = learned
    rules = retirement.Retirement(
        retirement.clock(), timedelta(days=retention_days), queued_signatures(data_dir / "spool")
    )
    return {"runtime": runtime, "retirement": rules}
