"""Plan <-> JSON: the machine-readable plan, also the saved-plan file format.

A wire format with its own `format_version`, kept apart from the in-memory
types; its shape is `schemas/plan.schema.json`. It holds no secret: declared
attributes and the non-secret computed values of stored resources only.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from reconciler import __version__
from reconciler.errors import PlanFileError
from reconciler.plan import Action, Change, DnsChange, Plan
from reconciler.schema import is_valid

FORMAT_VERSION = "1.0"


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "postform_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lineage": plan.lineage,
        "serial": plan.serial,
        "destroy": plan.destroy,
        "summary": {"add": plan.add, "change": plan.change, "destroy": plan.remove},
        "safety": {
            "refused": plan.refused,
            "refusals": list(plan.refusals),
            "allow_destructive": plan.allow_destructive,
        },
        "warnings": list(plan.warnings),
        "runtime": plan.runtime,
        "resource_changes": [_change(c) for c in plan.changes],
        "dns_changes": [dataclasses.asdict(d) for d in plan.dns_changes],
        "notes": list(plan.notes),
        "drift": list(plan.drift),
        "drift_zones": list(plan.drift_zones),
        "policy": plan.policy,
    }


def _change(c: Change) -> dict[str, Any]:
    return {
        "address": c.address,
        "type": c.type,
        "name": c.name,
        "action": c.action.value,
        "before": c.before,
        "after": c.after,
        "computed_before": c.computed_before,
        "unknown_after": list(c.unknown_after),
        "sensitive": list(c.sensitive),
        "forces_replacement": list(c.forces),
        "reason": c.reason,
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=False) + "\n"


def plan_from_json(text: str, source: str) -> Plan:
    """Parse a saved plan; PlanFileError when it is not one this postform reads."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PlanFileError(f"{source} is not a postform plan file (not JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        found = data.get("format_version") if isinstance(data, dict) else None
        raise PlanFileError(
            f"{source} is not a postform plan file of format {FORMAT_VERSION} (found {found!r})"
        )
    if not is_valid("plan.schema.json", data):
        raise PlanFileError(
            f"{source} does not match schemas/plan.schema.json; it may have "
            "been edited by hand. Make a new plan."
        )
    changes = tuple(
        Change(
            c["address"],
            c["type"],
            c["name"],
            Action(c["action"]),
            c["before"],
            c["after"],
            c["computed_before"],
            tuple(c["unknown_after"]),
            tuple(c["sensitive"]),
            tuple(c["forces_replacement"]),
            c["reason"],
        )
        for c in data["resource_changes"]
    )
    safety = data.get("safety", {})
    return Plan(
        changes,
        data["lineage"],
        data["serial"],
        tuple(data["warnings"]),
        data["runtime"],
        data["destroy"],
        tuple(DnsChange(**d) for d in data["dns_changes"]),
        tuple(data["notes"]),
        tuple(data["drift"]),
        data.get("policy"),
        tuple(safety.get("refusals", ())),
        safety.get("allow_destructive", False),
        tuple(data.get("drift_zones", ())),
    )
