"""Stored state -> text or JSON, secrets redacted. Pure: no I/O."""

from __future__ import annotations

import json
from typing import Any

from reconciler.policy import DKIM_STATUS, effective_status
from reconciler.render.values import SENSITIVE_TEXT, flatten, show
from reconciler.resources import SENSITIVE, TYPE_RANK
from reconciler.state.model import State


def ordered(state: State) -> list[tuple[str, dict[str, Any]]]:
    """Resources in dependency order, each DKIM selector with its current status (the
    last observation of its key, else what apply set)."""
    observed = state.dns.get(DKIM_STATUS, {})
    out = []
    for address, res in state.resources.items():
        if res.get("type") == "dkim":
            status = str(effective_status(address, res, observed))
            res = {**res, "computed": {**res.get("computed", {}), "status": status}}
        out.append((address, res))
    return sorted(out, key=lambda kv: (TYPE_RANK[kv[1]["type"]], kv[0]))


def redacted(res: dict[str, Any]) -> dict[str, Any]:
    computed = res.get("computed", {})
    return {
        "type": res["type"],
        "name": res["name"],
        "attributes": res["attributes"],
        "computed": {k: v for k, v in computed.items() if k not in SENSITIVE},
        "sensitive": sorted(k for k in computed if k in SENSITIVE),
    }


def resource_block(address: str, res: dict[str, Any]) -> str:
    label = res["type"] if res["name"] is None else f'{res["type"]} "{res["name"]}"'
    rows = [(k, show(v)) for k, v in sorted(flatten(res["attributes"]).items())]
    rows += [
        (k, SENSITIVE_TEXT if k in SENSITIVE else show(v))
        for k, v in sorted(res.get("computed", {}).items())
    ]
    width = max((len(k) for k, _ in rows), default=0)
    body = [f"    {k.ljust(width)} = {v}" for k, v in rows]
    return "\n".join([f"# {address}:", f"resource {label} {{", *body, "}"])


def render_state_text(state: State) -> str:
    if not state.resources:
        return "The state is empty: nothing has been applied.\n"
    return "\n\n".join(resource_block(a, r) for a, r in ordered(state)) + "\n"


def render_state_json(state: State) -> str:
    doc = {
        "format_version": "1.0",
        "lineage": state.lineage,
        "serial": state.serial,
        "resources": [{"address": a, **redacted(r)} for a, r in ordered(state)],
    }
    return json.dumps(doc, indent=2) + "\n"
