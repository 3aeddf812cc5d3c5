"""Comment placement for `postform fmt` (fmtlayout.py): a full-line comment describes
what follows it, so it takes that line's indentation; a `#` inside a multi-line string
is text and is never touched."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def indent_comments(text: str) -> str:
    """Each full-line comment indented like the next line that is not a comment (a
    comment describes what follows it); lines inside multi-line strings untouched."""
    lines = text.splitlines(keepends=True)
    protected = string_lines(yaml.compose(text, Loader=_LOADER))
    indent: int | None = None
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        stripped = line.lstrip(" ")
        if i in protected or not stripped.strip():
            continue
        if stripped.startswith("#"):
            if indent is not None:
                lines[i] = " " * indent + stripped
            continue
        indent = len(line) - len(stripped)
    return "".join(lines)


def string_lines(root: yaml.Node | None) -> set[int]:
    """The lines of multi-line scalars after their first (block scalars' text, quoted
    strings' continuations): a `#` there is text, not a comment."""
    out: set[int] = set()
    stack = [root] if root is not None else []
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            out.update(range(node.start_mark.line + 1, _end_line(node) + 1))
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return out


def _end_line(node: yaml.Node) -> int:
    end = node.end_mark  # a block scalar ends at the start of the line after its text
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line
