"""Plan -> Markdown for a pull-request comment. Pure: no I/O.

A GitHub comment holds at most 65,536 characters, so the table lists the first
MAX_ROWS changes and the full text plan is folded in a <details> block that is
cut with a note when it would not fit.
"""

from __future__ import annotations

from reconciler.plan import Action, Plan
from reconciler.render.text import render_text, summary_line

MAX_ROWS = 200
MAX_WARNINGS = 20
MAX_DETAIL_CHARS = 50_000
_ACTION = {
    Action.CREATE: "create",
    Action.UPDATE: "update in place",
    Action.REPLACE: "**replace**",
    Action.DELETE: "**destroy**",
}


def render_markdown(plan: Plan) -> str:
    out = [f"### postform plan: {summary_line(plan)}", ""]
    out += [f"> **Warning:** {w}" for w in plan.warnings[:MAX_WARNINGS]]
    if len(plan.warnings) > MAX_WARNINGS:
        out.append(f"> … and {len(plan.warnings) - MAX_WARNINGS} more warnings")
    if plan.warnings:
        out.append("")
    if plan.runtime.get("new_state"):
        out += [
            f"> **New state:** nothing has been applied to the {plan.runtime['new_state']} yet.",
            "",
        ]
    if plan.drift:
        out.append("**Drift** (DNS records changed outside postform):")
        out += [f"- {d}" for d in plan.drift[:MAX_WARNINGS]]
        out.append("")
    if plan.policy is not None:
        out += [f"> **Relay policy:** the published policy {plan.policy}; apply publishes it.", ""]
    out += [f"> {n}" for n in plan.notes[:MAX_WARNINGS]]
    if plan.empty:
        return "\n".join(out) + "\n"
    out += ["| Action | Resource | Why |", "|---|---|---|"]
    for change in plan.changes[:MAX_ROWS]:
        why = change.reason or ", ".join(change.changed_attributes())
        out.append(f"| {_ACTION[change.action]} | `{change.address}` | {why} |")
    if len(plan.changes) > MAX_ROWS:
        out.append(f"| | … and {len(plan.changes) - MAX_ROWS} more | |")
    detail = render_text(plan)
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[:MAX_DETAIL_CHARS] + "\n… (cut: run `postform plan` for the rest)\n"
    out += [
        "",
        "<details><summary>Full plan</summary>",
        "",
        "```diff",
        detail.rstrip("\n"),
        "```",
        "",
        "</details>",
    ]
    return "\n".join(out) + "\n"
