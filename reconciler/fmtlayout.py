"""Key order and comment placement for `postform fmt`, on text that ruamel.yaml has
already indented (fmt.py).

Keys of the mappings the schema describes go in the schema's order (the order the
README documents: version, include, state, dns, relay, limits, domains, senders, users,
suppressions; inside each section, the order of its properties); keys the schema does
not know follow in their own order, and names (domains, users) are never sorted.

Moving an entry moves whole lines: its key, its value, and the blank and comment lines
above it, which belong to it (a comment describes what follows it). The comment lines
before a file's first key are its header and stay on top; blank lines keep their places,
so a file keeps its rhythm. A flow mapping (`{selector: s1, algorithm: ed25519}`) is
rewritten on its line. Then every full-line comment takes the indentation of the line
it describes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from reconciler.fmtcomments import indent_comments, string_lines
from reconciler.schema import load_schema

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"
Schema = dict[str, Any]


@cache
def _top_schema() -> Schema:
    return load_schema("postform.schema.json")


def _alternatives(schema: Schema) -> list[Schema]:
    return [schema, *[s for s in schema.get("oneOf", []) if isinstance(s, dict)]]


def key_order(schema: Schema) -> list[str]:
    for alt in _alternatives(schema):
        if "properties" in alt:
            return list(alt["properties"])
    return []


def child_schema(schema: Schema, key: Any) -> Schema:
    for alt in _alternatives(schema):
        if isinstance(key, int):
            if isinstance(alt.get("items"), dict):
                return dict(alt["items"])
            continue
        if key in alt.get("properties", {}):
            return dict(alt["properties"][key])
        if isinstance(alt.get("additionalProperties"), dict):
            return dict(alt["additionalProperties"])
    return {}


def canonical(keys: list[str], order: list[str]) -> list[int]:
    """Indexes of `keys` in canonical order: known keys by `order`, then the others."""
    rank = {k: i for i, k in enumerate(order)}
    return sorted(range(len(keys)), key=lambda i: (rank.get(keys[i], len(order)), i))


@dataclass
class _Block:
    start: int  # first line (its comments and blank lines above the key)
    key: int  # the key's line
    end: int  # last line of its value


def arrange(text: str) -> str:
    """`text` with its keys in canonical order and its comments indented."""
    lines = text.splitlines(keepends=True)
    root = yaml.compose(text, Loader=_LOADER)
    if root is None:
        return text
    edits = _Edits(lines, string_lines(root))
    edits.walk(root, _top_schema(), floor=None)
    edits.apply()
    arranged = "".join(edits.lines)
    try:
        return indent_comments(arranged)
    except yaml.YAMLError:  # an alias moved before its anchor: keep the keys' order
        return indent_comments(text)


class _Edits:
    def __init__(self, lines: list[str], protected: set[int]) -> None:
        self.lines = lines
        self.protected = protected  # lines inside multi-line strings
        self.flows: list[tuple[int, int, int, str]] = []  # (line, start, end, text)
        self.blocks: list[tuple[list[_Block], list[int], int]] = []  # children first
        self.seen: set[int] = set()  # nodes walked: an alias is not walked again

    def walk(self, node: yaml.Node, schema: Schema, floor: int | None) -> None:
        if id(node) in self.seen:
            return
        self.seen.add(id(node))
        if node.flow_style if isinstance(node, yaml.CollectionNode) else False:
            self._flow(node, schema)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self.walk(value, child_schema(schema, key.value), key.start_mark.line)
            self._mapping(node, schema, floor)
        elif isinstance(node, yaml.SequenceNode):
            items = child_schema(schema, 0)
            for item in node.value:
                self.walk(item, items, item.start_mark.line)

    def _flow(self, node: yaml.Node, schema: Schema) -> None:
        line = node.start_mark.line
        if node.end_mark.line != line or not _needs_order(node, schema):
            return
        start, end = node.start_mark.column, node.end_mark.column
        if not _inside(node, self.lines[line], line, start, end):
            return  # an alias, an anchor or a tag in it: leave it as written
        self.flows.append((line, start, end, _flow_text(node, schema, self.lines[line])))

    def _mapping(self, node: yaml.MappingNode, schema: Schema, floor: int | None) -> None:
        pairs = node.value
        if len(pairs) < 2 or any(
            not isinstance(k, yaml.ScalarNode) or k.tag == _MERGE for k, _ in pairs
        ):
            return
        order = canonical([k.value for k, _ in pairs], key_order(schema))
        if order == list(range(len(pairs))):
            return
        keys = [k.start_mark.line for k, _ in pairs]
        column = pairs[0][0].start_mark.column
        previous = [-1, *keys[:-1]]
        blocks = [_Block(self._above(k, b), k, 0) for b, k in zip(previous, keys, strict=True)]
        for block, after in zip(blocks, blocks[1:], strict=False):
            block.end = after.start - 1
        blocks[-1].end = self._end(keys[-1], column)
        first = blocks[0]
        first.start = first.key
        while first.start - 1 > (-1 if floor is None else floor) and self._trivia(
            first.start - 1, comment_only=floor is None
        ):
            first.start -= 1
        if floor is None and first.start == 0:
            first.start = first.key  # the comments atop the file are its header: they stay
        self.blocks.append((blocks, order, column))

    def _trivia(self, line: int, comment_only: bool = False) -> bool:
        """A blank or comment line, not inside a multi-line string."""
        text = self.lines[line].strip()
        if line in self.protected:
            return False
        return text.startswith("#") or (not text and not comment_only)

    def _above(self, key: int, before: int) -> int:
        """The first of the blank and comment lines right above line `key`."""
        start = key
        while start - 1 > before and self._trivia(start - 1):
            start -= 1
        return start

    def _end(self, key: int, column: int) -> int:
        """The last line of the entry at line `key` of a mapping whose keys are at
        `column`: before the next line that holds something at that column or left of it
        (a key of an enclosing mapping, the next list item), less the blank and comment
        lines before it (they belong to what follows)."""
        line = key + 1
        while line < len(self.lines):
            text = self.lines[line]
            indent = len(text) - len(text.lstrip(" "))
            content = not self._trivia(line) and line not in self.protected
            dash = indent == column and text.lstrip(" ")[:1] == "-"  # a list at its key's column
            if content and indent <= column and not dash:
                break
            line += 1
        return max(key, self._above(line, key) - 1)

    def apply(self) -> None:
        for line, start, end, text in self.flows:
            old = self.lines[line]
            self.lines[line] = old[:start] + text + old[end:]
        for blocks, order, column in self.blocks:
            self._permute(blocks, order, column)

    def _permute(self, blocks: list[_Block], order: list[int], column: int) -> None:
        """Put the entries in `order`. The line list keeps its length (a removed blank line
        becomes "", an added one joins the next line), so the blocks of enclosing
        mappings, found before any change, stay valid."""
        lines = self.lines
        first = blocks[0]
        prefix = lines[first.key][:column]
        compact = prefix.strip() != ""  # `- key: value`: the first key shares the dash's line
        if compact:
            lines[first.key] = " " * column + lines[first.key][column:]
        parts = [lines[b.start : b.end + 1] for b in blocks]
        blanks = [_leading_blanks(p) for p in parts]
        separator = Counter(blanks[1:]).most_common(1)[0][0]
        out: list[str] = []
        for position, i in enumerate(order):
            part = parts[i][blanks[i] :]
            if compact and position == 0:
                at = blocks[i].key - blocks[i].start - blanks[i]
                part[at] = prefix + part[at][column:]
            want = 0 if position == 0 else (blanks[i] or separator)
            out.extend(["\n" * want + part[0], *part[1:]])
        size = blocks[-1].end + 1 - first.start
        lines[first.start : blocks[-1].end + 1] = out + [""] * (size - len(out))


def _needs_order(node: yaml.Node, schema: Schema) -> bool:
    if isinstance(node, yaml.MappingNode):
        keys = [k.value for k, _ in node.value]
        if canonical(keys, key_order(schema)) != list(range(len(keys))):
            return True
        return any(_needs_order(v, child_schema(schema, k.value)) for k, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return any(_needs_order(item, child_schema(schema, 0)) for item in node.value)
    return False


def _inside(node: yaml.Node, text: str, line: int, start: int, end: int) -> bool:
    """Every node of a flow collection lies in its own text (no alias from elsewhere),
    and no collection in it has an anchor or a tag (rewriting it would drop them)."""
    marks = (node.start_mark, node.end_mark)
    if any(m.line != line or not start <= m.column <= end for m in marks):
        return False
    if isinstance(node, yaml.CollectionNode):
        if text[node.start_mark.column : node.start_mark.column + 1] not in ("{", "["):
            return False
        children = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else node.value
        )
        return all(_inside(n, text, line, start, end) for n in children)
    return True


def _flow_text(node: yaml.Node, schema: Schema, line: str) -> str:
    if isinstance(node, yaml.MappingNode):
        pairs = node.value
        order = canonical([k.value for k, _ in pairs], key_order(schema))
        items = []
        for i in order:
            key, value = pairs[i]
            text = _flow_text(value, child_schema(schema, key.value), line)
            items.append(_flow_text(key, {}, line) + (f": {text}" if text else ""))
        return "{" + ", ".join(items) + "}"
    if isinstance(node, yaml.SequenceNode):
        items_schema = child_schema(schema, 0)
        return "[" + ", ".join(_flow_text(n, items_schema, line) for n in node.value) + "]"
    return line[node.start_mark.column : node.end_mark.column]


def _leading_blanks(part: list[str]) -> int:
    n = 0
    while n < len(part) and not part[n].strip():
        n += 1
    return n
