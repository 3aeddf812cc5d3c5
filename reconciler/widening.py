"""Changes that widen what a credential may do, for the plan's warnings. Pure.

A credential sends as the approved senders its user's `senders:` list names; a user
without the list may send as every approved sender. These changes widen that:

* a user created without a senders list (its credentials may send as every sender);
* a user's senders list removed (the diff shows a removal, the effect is the opposite);
* addresses added to a user's senders list (named);
* a credential added to an existing user without a senders list;
* approved senders added while existing users have no senders list (they gain them).

Narrowing changes (a list shortened or added, a user or credential destroyed), key
rotations (`--replace`) and relay-wide limits are not flagged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from reconciler.plan import Action, Change

Stored = Mapping[str, Mapping[str, Any]]
LISTED = 10  # addresses named in one warning


def widening_warnings(changes: Sequence[Change], stored: Stored) -> list[str]:
    if not changes:
        return []
    users = [c for c in changes if c.type == "user"]
    credentials = [c for c in changes if c.type == "credential" and c.action is Action.CREATE]
    out: list[str] = []
    opened: set[str] = set()  # users this plan lets send as everyone: warned once
    everyone = ""  # counted only when a warning names it
    if users or credentials:
        everyone = f"every approved sender ({_approved_after(changes, stored)} after this plan)"
    for c in users:
        warning = None if c.action is Action.DELETE else _user_warning(c, everyone)
        if warning is not None:
            out.append(warning)
            if c.after is not None and "senders" not in c.after:
                opened.add(str(c.name))
    unrestricted = _unrestricted_after(users, stored) - opened
    if not unrestricted:
        return out
    for c in credentials:
        user = str((c.after or {}).get("user"))
        if user in unrestricted:
            out.append(
                f'{c.address} is new and may send as {everyone}: user["{user}"] has no senders list'
            )
    senders = [c for c in changes if c.type == "sender" and c.action is Action.CREATE]
    if senders:
        out.append(_new_senders_warning(senders, sorted(unrestricted)))
    return out


def _user_warning(c: Change, everyone: str) -> str | None:
    had = (c.before or {}).get("senders")  # None: every approved sender
    has = (c.after or {}).get("senders")
    if c.action is Action.CREATE:
        if has is not None:
            return None
        return (
            f"{c.address} is created without a senders list: its credentials may send as {everyone}"
        )
    if has is None:
        if had is None:
            return None
        return (
            f"{c.address} loses its senders list: its credentials, limited to {len(had)} "
            f"sender(s) until now, may send as {everyone}"
        )
    gained = [] if had is None else sorted(set(has) - set(had))  # a list added narrows
    if not gained:
        return None
    return (
        f"{c.address} may send as {len(gained)} more sender(s) (its senders list gains "
        f"them): {_named(gained)}"
    )


def _new_senders_warning(senders: Sequence[Change], users: Sequence[str]) -> str:
    named = ", ".join(f'user["{u}"]' for u in users[:LISTED])
    if len(users) > LISTED:
        named += f" and {len(users) - LISTED} more"
    return (
        f"{len(senders)} new approved sender(s) may be sent as by the credentials of every "
        f"user without a senders list ({named}): {_named(str(c.name) for c in senders)}"
    )


def _named(addresses: Iterable[str]) -> str:
    items = list(addresses)
    text = ", ".join(json.dumps(a) for a in items[:LISTED])
    return text + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def _approved_after(changes: Sequence[Change], stored: Stored) -> int:
    count = sum(1 for res in stored.values() if res["type"] == "sender")
    for c in changes:
        if c.type == "sender" and c.action is Action.CREATE:
            count += 1
        elif c.type == "sender" and c.action is Action.DELETE:
            count -= 1
    return count


def _unrestricted_after(users: Sequence[Change], stored: Stored) -> set[str]:
    """The users without a senders list once the plan (its user changes) is applied."""
    free = {
        str(res["name"]): "senders" not in res["attributes"]
        for res in stored.values()
        if res["type"] == "user"
    }
    for c in users:
        if c.action is Action.DELETE:
            free.pop(str(c.name), None)
        else:
            free[str(c.name)] = "senders" not in (c.after or {})
    return {name for name, unlimited in free.items() if unlimited}
