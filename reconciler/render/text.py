"""Plan -> Terraform-style text. Pure: no I/O."""

from __future__ import annotations

from reconciler.plan import Action, Change, Plan
from reconciler.render.lists import text_list
from reconciler.render.review import drift_fix, refused_footer, safety_text
from reconciler.render.values import SENSITIVE_TEXT, UNKNOWN_TEXT, flatten, show

_HEADLINE = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in place",
    Action.REPLACE: "must be replaced",
    Action.DELETE: "will be destroyed",
}
_SYMBOL = {Action.CREATE: "  +", Action.UPDATE: "  ~", Action.REPLACE: "-/+", Action.DELETE: "  -"}


def summary_line(plan: Plan) -> str:
    if plan.empty and plan.policy is not None:
        return "No resource changes; apply will publish the relay policy again."
    if plan.empty:
        return "No changes. The state matches the configuration."
    return f"Plan: {plan.add} to add, {plan.change} to change, {plan.remove} to destroy."


def render_text(plan: Plan) -> str:
    lines: list[str] = safety_text(plan)
    for warning in plan.warnings:
        lines.append(f"Warning: {warning}")
    if plan.warnings:
        lines.append("")
    new_state = plan.runtime.get("new_state")
    if new_state:
        lines.append(
            f"New state: nothing has been applied to the {new_state} yet; apply creates it."
        )
        lines.append("")
    learned = plan.runtime.get("learned_suppressions")
    if learned is not None:
        lines.append(
            f"Runtime: the relay has learned {learned} suppression(s) from bounces; "
            "plan never changes them (see `postform suppressions list`)."
        )
        lines.append("")
    if plan.drift:
        lines.append(
            "Drift: DNS records changed outside postform (as the last `dns verify` or "
            "`refresh` found):"
        )
        lines += [f"  ! {d}" for d in plan.drift]
        lines += [drift_fix(plan), ""]
    if plan.policy is not None:
        lines.append(
            f"Relay policy: the published policy {plan.policy}; apply publishes it again "
            "from the state (the relays follow it)."
        )
        lines.append("")
    if plan.changes:
        lines.append("postform will perform the following actions:")
        lines.append("")
        for change in plan.changes:
            lines.extend(change_block(change))
            lines.append("")
    lines.extend(dns_section(plan))
    lines.append(summary_line(plan))
    return "\n".join(lines) + "\n" + refused_footer(plan)


_DNS_SIGN = {"add": "+", "change": "~", "remove": "-"}


def dns_section(plan: Plan) -> list[str]:
    """The records to publish after apply, then notes on DKIM activation."""
    lines: list[str] = []
    if plan.dns_changes:
        lines.append("DNS records to publish after apply (`postform dns records` prints them all):")
        for d in plan.dns_changes:
            value = (
                show(d.after)
                if d.action == "add"
                else show(d.before)
                if d.action == "remove"
                else f"{show(d.before)} -> {show(d.after)}"
            )
            lines.append(f"  {_DNS_SIGN[d.action]} {d.name} {d.type} {value}")
        lines.append("")
    lines += [f"Note: {n}" for n in plan.notes]
    if plan.notes:
        lines.append("")
    return lines


def change_block(change: Change) -> list[str]:
    head = f"  # {change.address} {_HEADLINE[change.action]}"
    if change.reason and change.action is not Action.DELETE:
        head += f" ({change.reason})"
    label = change.type if change.name is None else f'{change.type} "{change.name}"'
    if change.action is Action.CREATE:
        return [head, f"  + {label} {{", *_created_rows(change), "    }"]
    body = _rows(change)
    width = max((len(k) for _, k, _ in body), default=0)
    lines = [head, f"{_SYMBOL[change.action]} {label} {{"]
    for mark, key, value in body:
        lines.append(f"      {mark} {key.ljust(width)} = {value}")
    hidden = _hidden_count(change)
    if hidden:
        lines.append(f"        # ({hidden} unchanged attribute{'s' if hidden > 1 else ''} hidden)")
    lines.append("    }")
    return lines


# A created resource's row layout by its shape (attribute names, what apply makes, what
# is sensitive): a first plan renders 100,000 senders of one or two shapes.
_Layout = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]
_LAYOUTS: dict[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], _Layout] = {}


def _created_rows(change: Change) -> list[str]:
    """A new resource's rows: every attribute, then what apply makes."""
    after = flatten(change.after)
    shape = (tuple(after), change.unknown_after, change.sensitive)
    layout = _LAYOUTS.get(shape)
    if layout is None:
        layout = _LAYOUTS.setdefault(shape, _created_layout(*shape))
    prefixes, made_at_apply = layout
    return [prefix + show(after[key]) for key, prefix in prefixes] + list(made_at_apply)


def _created_layout(
    keys: tuple[str, ...], unknown: tuple[str, ...], sensitive: tuple[str, ...]
) -> _Layout:
    width = max(map(len, (*keys, *unknown)), default=0)
    prefixes = tuple((k, f"      + {k.ljust(width)} = ") for k in sorted(keys))
    made = tuple(
        f"      + {k.ljust(width)} = {SENSITIVE_TEXT if k in sensitive else UNKNOWN_TEXT}"
        for k in unknown
    )
    return prefixes, made


def _rows(change: Change) -> list[tuple[str, str, str]]:
    """The rows of an update, a replacement or a deletion."""
    before, after = flatten(change.before), flatten(change.after)
    computed = change.computed_before or {}
    rows: list[tuple[str, str, str]] = []
    if change.action is Action.DELETE:
        rows = [("-", k, f"{show(v)} -> null") for k, v in sorted(before.items())]
        rows += [("-", k, f"{show(v)} -> null") for k, v in sorted(computed.items())]
        rows += [("-", k, SENSITIVE_TEXT) for k in change.sensitive]
    else:
        rows = [_changed_row(k, before, after, change.forces) for k in _changed(before, after)]
        if change.action is Action.REPLACE:
            rows += [
                (
                    "~",
                    k,
                    SENSITIVE_TEXT
                    if k in change.sensitive
                    else f"{show(computed.get(k))} -> {UNKNOWN_TEXT}",
                )
                for k in change.unknown_after
            ]
    return rows


def _changed(before: dict[str, object], after: dict[str, object]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _changed_row(
    key: str, before: dict[str, object], after: dict[str, object], forces: tuple[str, ...]
) -> tuple[str, str, str]:
    note = " # forces replacement" if key.split(".")[0] in forces else ""
    if key not in before:
        return "+", key, show(after[key]) + note
    if key not in after:
        return "-", key, f"{show(before[key])} -> null{note}"
    old, new = before[key], after[key]
    if isinstance(old, list) and isinstance(new, list):
        return "~", key, text_list(old, new, note)
    return "~", key, f"{show(before[key])} -> {show(after[key])}{note}"


def _hidden_count(change: Change) -> int:
    if change.action not in (Action.UPDATE, Action.REPLACE):
        return 0
    before, after = flatten(change.before), flatten(change.after)
    return sum(1 for k in before.keys() & after.keys() if before[k] == after[k])
