"""Glue between a loaded config, the stored state and the pure diff: no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from reconciler.config import Config
from reconciler.diff import diff
from reconciler.dns.plandns import dns_view
from reconciler.dns.records import records_for
from reconciler.errors import PostformError, StalePlanError
from reconciler.plan import Plan
from reconciler.resources import desired_resources
from reconciler.retirement import Retirement, retire
from reconciler.state.model import State
from reconciler.widening import widening_warnings


def make_plan(
    config: Config,
    state: State,
    *,
    replace: Collection[str] = (),
    destroy: bool = False,
    runtime: dict[str, Any] | None = None,
    retirement: Retirement | None = None,
) -> Plan:
    """The plan that makes `state` match `config`. `runtime` holds facts the relay keeps
    outside the state (e.g. learned_suppressions), shown in the plan and never changed;
    with `retirement`, DKIM selectors the config dropped leave in two phases."""
    desired = {} if destroy else desired_resources(config)
    retiring: list[str] = []
    if retirement is not None and not destroy:
        desired, retiring = retire(desired, state.resources, retirement)
    missing = sorted(a for a in replace if a not in desired or a not in state.resources)
    if missing:
        raise PostformError(
            f"--replace {missing[0]}: no such resource in both the configuration "
            "and the state (see `postform state list`)"
        )
    plan = diff(
        desired,
        state.resources,
        lineage=state.lineage,
        serial=state.serial,
        replace=set(replace),
    )
    view = dns_view(plan.changes, state, config.dns_ttl)
    return dataclasses.replace(
        plan,
        warnings=(
            *(str(w) for w in config.warnings),
            *view.warnings,
            *widening_warnings(plan.changes, state.resources),
        ),
        destroy=destroy,
        dns_changes=view.changes,
        notes=(*view.notes, *retiring),
        drift=view.drift,
        drift_zones=drift_zones(view.drift, state, config.dns_ttl),
        runtime=dict(runtime or {}),
    )


def drift_zones(drift: tuple[str, ...], state: State, ttl: int) -> tuple[str, ...]:
    """The zones holding the drifted records (each drift line starts with the record's
    name, type and owner, reconciler/dns/lifecycle.py): where to publish them again."""
    if not drift:
        return ()
    zones = {
        r.zone
        for r in records_for(state.resources.values(), ttl)
        if any(d.startswith(f"{r.name} {r.type} ({r.owner}) ") for d in drift)
    }
    return tuple(sorted(zones))


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
