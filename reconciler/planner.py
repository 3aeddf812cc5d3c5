"""Glue between a loaded config, the stored state and the pure diff."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Collection
from pathlib import Path

from reconciler.config import Config
from reconciler.diff import diff
from reconciler.dns.plandns import dns_view
from reconciler.errors import PostformError, StalePlanError
from reconciler.plan import Plan
from reconciler.relaydata import relay_data_dir
from reconciler.resources import desired_resources
from reconciler.statefile import State


def make_plan(
    config: Config, state: State, *, replace: Collection[str] = (), destroy: bool = False
) -> Plan:
    desired = {} if destroy else desired_resources(config)
    missing = sorted(a for a in replace if a not in desired or a not in state.resources)
    if missing:
        raise PostformError(
            f"--replace {missing[0]}: no such resource in both the configuration "
            "and the state (see `postform state list`)"
        )
    warnings = tuple(str(w) for w in config.warnings)
    plan = diff(
        desired,
        state.resources,
        lineage=state.lineage,
        serial=state.serial,
        replace=set(replace),
        warnings=warnings,
    )
    records, notes, drift = dns_view(plan.changes, state, config.dns_ttl)
    runtime = {}
    learned = learned_suppressions(relay_data_dir(config) / "relay.sqlite")
    if learned is not None:
        runtime["learned_suppressions"] = learned
    return dataclasses.replace(
        plan, destroy=destroy, dns_changes=records, notes=notes, drift=drift, runtime=runtime
    )


def learned_suppressions(path: Path) -> int | None:
    """How many suppressions the relay learned (runtime state: shown, never planned)."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
        try:
            return int(db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


def check_not_stale(plan: Plan, state: State, source: str) -> None:
    if (plan.lineage, plan.serial) == (state.lineage, state.serial):
        return
    if plan.lineage != state.lineage:
        why = (
            f"it was made against state lineage {plan.lineage}, but the state now has "
            f"lineage {state.lineage}"
        )
    else:
        why = (
            f"it was made against state serial {plan.serial}, but the state is now at "
            f"serial {state.serial}"
        )
    raise StalePlanError(f"saved plan {source} is stale: {why}. Run `postform plan` again.")
