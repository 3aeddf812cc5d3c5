"""Whether a YAML text is already laid out as ruamel.yaml would write it (fmt.py), so
`postform fmt` can skip the round trip: ruamel.yaml reads 4 MB of YAML (100,000
senders) in about 30 s, this check in well under 1 s.

Canonical here means: a block mapping at the top; mapping keys 2 columns right of
their parent's, list dashes 2 columns right of their key and items 2 right of the
dash; `key: value` and `- item` with one space; every scalar and flow collection on
one line, flow collections spaced as `{a: 1, b: [x, y]}`; no block scalar, anchor,
alias, tag or document marker; no trailing spaces; one newline at the end. Anything
else goes through ruamel.yaml, which is always right; this only has to be sure.
"""

from __future__ import annotations

from typing import Any

import yaml

_PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))


def canonical_layout(text: str, root: yaml.Node | None) -> bool:
    """True when `text` (composed as `root`) needs no re-indenting."""
    if root is None or not isinstance(root, yaml.MappingNode) or root.flow_style:
        return False
    if not text.endswith("\n") or text.endswith("\n\n") or " \n" in text or "\t" in text:
        return False
    if text.startswith("---") or "\n---" in text or "\n..." in text or "&" in text:
        return False  # `&` may be an anchor: a rare case, left to ruamel.yaml
    lines = text.splitlines()
    try:
        return _Check(lines).mapping(root, 0)
    except _Odd:
        return False


class _Odd(Exception):
    """Something this check does not vouch for."""


class _Check:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def mapping(self, node: yaml.MappingNode, column: int) -> bool:
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.start_mark.column != column:
                return False
            self.one_line(key)
            if not self.value(key, value, column):
                return False
        return True

    def value(self, key: yaml.Node, value: yaml.Node, column: int) -> bool:
        line = self.lines[key.end_mark.line]
        rest = line[key.end_mark.column :]
        if isinstance(value, yaml.CollectionNode) and not value.flow_style:
            if not _colon_only(rest):
                return False
            if isinstance(value, yaml.MappingNode):
                return value.value != [] and self.mapping(value, column + 2)
            return isinstance(value, yaml.SequenceNode) and self.sequence(value, column + 2)
        if _empty(value):
            return _colon_only(rest)
        if value.start_mark.line != key.end_mark.line or not rest.startswith(": "):
            return False
        return value.start_mark.column == key.end_mark.column + 2 and self.inline(value)

    def sequence(self, node: yaml.SequenceNode, dash: int) -> bool:
        for item in node.value:
            line = self.lines[item.start_mark.line]
            if line[:dash].strip() or line[dash : dash + 2] != "- ":
                return False
            if item.start_mark.column != dash + 2:
                return False
            if isinstance(item, yaml.MappingNode) and not item.flow_style:
                if not self.mapping(item, dash + 2):
                    return False
            elif isinstance(item, yaml.SequenceNode) and not item.flow_style:
                return False  # `- - x`
            elif _empty(item) or not self.inline(item):
                return False
        return True

    def inline(self, node: yaml.Node) -> bool:
        """A scalar or a flow collection, on one line, spaced as ruamel.yaml writes it."""
        self.one_line(node)
        if isinstance(node, yaml.ScalarNode):
            return node.style in (None, "", "'", '"') and node.tag in _PLAIN_TAGS
        line = self.lines[node.start_mark.line]
        written = line[node.start_mark.column : node.end_mark.column]
        return written == _flow(node, line)

    def one_line(self, node: yaml.Node) -> None:
        if node.start_mark.line != node.end_mark.line:
            raise _Odd


def _colon_only(rest: str) -> bool:
    """`:` alone after a key, or followed by a comment."""
    return rest == ":" or (rest[:2] == ": " and rest[2:].lstrip(" ").startswith("#"))


def _empty(node: Any) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value == "" and not node.style


def _flow(node: yaml.Node, line: str) -> str:
    if isinstance(node, yaml.MappingNode):
        items = (f"{_flow(k, line)}: {_flow(v, line)}" for k, v in node.value)
        return "{" + ", ".join(items) + "}"
    if isinstance(node, yaml.SequenceNode):
        return "[" + ", ".join(_flow(n, line) for n in node.value) + "]"
    if node.tag not in _PLAIN_TAGS or _empty(node):
        raise _Odd
    return line[node.start_mark.column : node.end_mark.column]
