"""Plan -> Markdown for a pull-request comment. Pure: no I/O.

A GitHub comment holds at most 65,536 characters, so the table lists the first
MAX_ROWS changes and the full text plan is folded in a <details> block that is
cut with a note when it would not fit. Every block ends with a blank line: a quote
or a list runs on into the next line otherwise (GitHub would put the table in it).
Free text is escaped outside its `code spans`, so an address or a record name never
turns into emphasis or HTML.
"""

from __future__ import annotations

import re

from reconciler.plan import Action, Change, Plan
from reconciler.render.lists import short_list
from reconciler.render.review import PROCEED, drift_fix, safety_head
from reconciler.render.text import render_text, summary_line
from reconciler.render.values import flatten

MAX_ROWS = 200
MAX_WARNINGS = 20
MAX_DETAIL_CHARS = 50_000
MAX_ITEMS = 10  # list items named in one table cell
_ACTION = {
    Action.CREATE: "create",
    Action.UPDATE: "update in place",
    Action.REPLACE: "**replace**",
    Action.DELETE: "**destroy**",
}
_CODE = re.compile(r"(`[^`]*`)")
_SPECIAL = re.compile(r"([\\*_<\[\]|])")


def render_markdown(plan: Plan) -> str:
    verdict = " **Apply will refuse it.**" if plan.refused else ""
    out = [f"### postform plan: {summary_line(plan)}{verdict}", ""]
    out += _safety(plan)
    out += _quoted("Warning", plan.warnings, "warnings")
    if plan.runtime.get("new_state"):
        out += [
            f"> **New state:** nothing has been applied to the {plan.runtime['new_state']} yet.",
            "",
        ]
    out += _drift(plan)
    if plan.policy is not None:
        out += [
            f"> **Relay policy:** the published policy {md(plan.policy)}; apply publishes it.",
            "",
        ]
    out += _quoted("Note", plan.notes, "notes")
    if plan.empty:
        return "\n".join(out) + "\n"
    return "\n".join(out + _table(plan) + _details(plan)) + "\n"


def md(text: str) -> str:
    """`text` as Markdown inline text: special characters escaped outside code spans."""
    parts = _CODE.split(text)
    return "".join(p if i % 2 else _SPECIAL.sub(r"\\\1", p) for i, p in enumerate(parts))


def _safety(plan: Plan) -> list[str]:
    if not plan.refusals:
        return []
    out = [f"> **Safety:** {md(safety_head(plan))}"]
    out += [f"> - {md(r)}" for r in plan.refusals]
    if plan.refused:
        out += [">", f"> {md(PROCEED)}"]
    return [*out, ""]


def _quoted(label: str, items: tuple[str, ...], plural: str) -> list[str]:
    """Each item a paragraph of one quote, at most MAX_WARNINGS of them."""
    if not items:
        return []
    out: list[str] = []
    for item in items[:MAX_WARNINGS]:
        out += [f"> **{label}:** {md(item)}", ">"]
    if len(items) > MAX_WARNINGS:
        out.append(f"> … and {len(items) - MAX_WARNINGS} more {plural}")
    else:
        out.pop()
    return [*out, ""]


def _drift(plan: Plan) -> list[str]:
    if not plan.drift:
        return []
    out = ["**Drift** (DNS records changed outside postform):", ""]
    out += [f"- {md(d)}" for d in plan.drift[:MAX_WARNINGS]]
    if len(plan.drift) > MAX_WARNINGS:
        out.append(f"- … and {len(plan.drift) - MAX_WARNINGS} more")
    return [*out, "", md(drift_fix(plan)), ""]


def _table(plan: Plan) -> list[str]:
    out = ["| Action | Resource | Why |", "|---|---|---|"]
    for change in plan.changes[:MAX_ROWS]:
        out.append(f"| {_ACTION[change.action]} | `{change.address}` | {_why(change)} |")
    if len(plan.changes) > MAX_ROWS:
        out.append(f"| | … and {len(plan.changes) - MAX_ROWS} more | |")
    return [*out, ""]


def _why(change: Change) -> str:
    """The reason, else the changed attributes; a changed list item by item."""
    if change.reason:
        return md(change.reason)
    if change.action is not Action.UPDATE:
        return md(", ".join(change.changed_attributes()))
    before, after = flatten(change.before), flatten(change.after)
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    parts = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if isinstance(old, list) and isinstance(new, list):
            items = short_list(old, new, MAX_ITEMS)
            parts.append(f"{md(key)}: " + ", ".join(map(_code, items)))
        else:
            parts.append(md(key))
    return "; ".join(parts)


def _code(text: str) -> str:
    """A code span in a table cell (a pipe there must still be escaped); `… and N more`
    stays text."""
    if text.startswith("…"):
        return text
    text = text.replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def _details(plan: Plan) -> list[str]:
    detail = render_text(plan)
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[:MAX_DETAIL_CHARS] + "\n… (cut: run `postform plan` for the rest)\n"
    fence = "`" * max(3, 1 + max(map(len, re.findall("`+", detail)), default=0))
    return [
        "<details><summary>Full plan</summary>",
        "",
        f"{fence}diff",
        detail.rstrip("\n"),
        fence,
        "",
        "</details>",
    ]
