"""`${NAME}` in a config's string values: the environment's value, read at load.

Only settings that say *where* may come from the environment (see ALLOWED): the state's
location, the DNS output folder, and the relay's names, addresses and paths. Every other
value becomes a resource attribute stored in the state as written, and state.encryption
seals only DKIM keys and password hashes: a secret substituted there (a token in a
description, say) would sit in the state, the relay policy and `postform show` in clear.
The environment is where CI keeps its secrets, so it may not fill those values at all.

`$${` writes a literal `${`. A value is substituted once: the environment's value is
never searched for `${` itself. Only documents whose text holds `${` are walked, so a
config without variables pays nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from typing import Any

from reconciler.errors import Reason
from reconciler.yamlload import DocPath, Document

# Paths (prefixes) whose string values may hold ${NAME}: none of them is stored as a
# resource attribute that could hold a secret.
ALLOWED: tuple[DocPath, ...] = (
    ("state",),
    ("dns",),
    ("relay", "hostname"),
    ("relay", "spf_domain"),
    ("relay", "ipv4"),
    ("relay", "ipv6"),
    ("relay", "listen"),
    ("relay", "tls"),
    ("relay", "data_dir"),
    ("relay", "proxy_from"),
    ("relay", "smarthost", "host"),
)
ALLOWED_TEXT = (
    "state:, dns:, relay.hostname, relay.spf_domain, relay.ipv4, relay.ipv6, "
    "relay.listen, relay.tls, relay.data_dir, relay.proxy_from and relay.smarthost.host"
)

# `$${` (an escape), `${NAME}`, or a `${` that is neither (an error).
_TOKEN = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\{")


class Unresolved(ValueError):
    """A `${...}` that cannot be substituted; the message says why."""


def expand(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with every `${NAME}` replaced and `$${` made `${`; raises Unresolved."""
    env = os.environ if environ is None else environ

    def one(match: re.Match[str]) -> str:
        token, name = match.group(0), match.group(1)
        if token == "$${":
            return "${"
        if name is None:
            raise Unresolved(
                "`${` must start a variable such as ${NAME} (letters, digits and _, then `}`);"
                " write $${ for a literal ${"
            )
        value = env.get(name)
        if value is None:
            raise Unresolved(f"environment variable {name} is not set")
        return value

    return _TOKEN.sub(one, text)


def variables(text: str) -> list[str]:
    """The names of the variables `text` uses (not escaped ones)."""
    return [m.group(1) for m in _TOKEN.finditer(text) if m.group(1)]


def allowed(path: DocPath) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in ALLOWED)


def substitute(doc: Document) -> None:
    """Replace the variables in `doc`'s string values, in place; problems go to
    doc.problems, located at the value."""
    if not doc.templated:
        return
    found = list(_substitute(doc))
    doc.problems.extend(found)
    # The values left as written: other checks say nothing more about them.
    doc.memo["unresolved"] = {(r.file, r.line, r.column) for r in found}


def _substitute(doc: Document) -> Iterator[Reason]:
    for container, key, path, text in _strings(doc.data, ()):
        if path[:1] == ("include",):
            yield doc.reason(path, "include paths are read as written: no ${...} in them")
            continue
        names = variables(text)
        if names and not allowed(path):
            yield doc.reason(path, _refused(names[0]))
            continue
        try:
            container[key] = expand(text)
        except Unresolved as exc:
            yield doc.reason(path, str(exc))


def _refused(name: str) -> str:
    return (
        f"${{{name}}} is not allowed here: this value is stored in the state as written, "
        "unencrypted (state.encryption seals only DKIM keys and password hashes), so it may "
        f"not come from the environment, where secrets live. Variables are allowed only in "
        f"{ALLOWED_TEXT}; write $${{ for a literal ${{"
    )


def _strings(data: Any, path: DocPath) -> Iterator[tuple[Any, Any, DocPath, str]]:
    """(container, key, path, value) of every string value holding `${`, depth first;
    a container reached twice (a YAML alias) is walked once."""
    seen: set[int] = set()
    stack: list[tuple[Any, DocPath]] = [(data, path)] if isinstance(data, dict | list) else []
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if type(value) is str:
                if "${" in value:
                    yield node, key, (*where, key), value
            elif isinstance(value, dict | list):
                stack.append((value, (*where, key)))
