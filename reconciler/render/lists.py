"""A list attribute's change item by item (`+ "a@x"`, `- "b@x"`), for the text and
Markdown plans: a senders list of 900 addresses that gains one shows that one, not two
lines of 900. Pure."""

from __future__ import annotations

import json
from difflib import SequenceMatcher
from typing import Any

from reconciler.render.values import show

# ("+", item) added, ("-", item) removed, ("=", n) a run of n unchanged items.
Edit = tuple[str, Any]
ITEM_INDENT = " " * 10  # under the row's `~ key = [`, as Terraform writes it


def list_edits(before: list[Any], after: list[Any]) -> list[Edit]:
    """The items removed and added, in list order, with the unchanged runs counted."""
    old = [json.dumps(x, sort_keys=True) for x in before]
    new = [json.dumps(x, sort_keys=True) for x in after]
    out: list[Edit] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(("=", i2 - i1))
            continue
        out += [("-", x) for x in before[i1:i2]]
        out += [("+", x) for x in after[j1:j2]]
    return out


def text_list(before: list[Any], after: list[Any], note: str = "") -> str:
    """The value of a text plan row: `[`, one line per added or removed item, `]`."""
    lines = [f"[{note}"]
    for mark, item in list_edits(before, after):
        if mark == "=":
            s = "s" if item > 1 else ""
            lines.append(f"{ITEM_INDENT}  # ({item} unchanged element{s} hidden)")
        else:
            lines.append(f"{ITEM_INDENT}{mark} {show(item)},")
    lines.append(" " * 8 + "]")
    return "\n".join(lines)


def short_list(before: list[Any], after: list[Any], limit: int = 10) -> list[str]:
    """The added and removed items as `+ "a@x"` and `- "b@x"`, at most `limit` of them
    and then how many more."""
    changed = [f"{mark} {show(item)}" for mark, item in list_edits(before, after) if mark != "="]
    if len(changed) > limit:
        return [*changed[:limit], f"… and {len(changed) - limit} more"]
    return changed
