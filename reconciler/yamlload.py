"""Load YAML into plain Python data while keeping the nodes for error locations.

PyYAML's C composer builds the node tree; this module constructs the data
itself so that it can refuse what PyYAML accepts silently (duplicate keys,
alias bombs) and, later, map a path in the data back to FILE:LINE:COL.
Locations are looked up lazily: only an error pays for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import ConfigError, Reason

try:
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Base = yaml.SafeLoader


class _Loader(_Base):  # type: ignore[misc]
    """The safe loader, with a short way through tag resolution for the common scalar:
    plain text whose first character no implicit resolver looks at (an address, a name)
    is a string. PyYAML calls `resolve` once per scalar; at 100,000 senders its general
    path was 0.25 s of a plan."""

    _FIRST = frozenset(k for k in _Base.yaml_implicit_resolvers if k)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if (
            kind is yaml.ScalarNode
            and implicit[0]
            and value
            and value[0] not in self._FIRST
            and None not in self.yaml_implicit_resolvers
            and not self.yaml_path_resolvers
        ):
            return self.DEFAULT_SCALAR_TAG
        return super().resolve(kind, value, implicit)


# Aliases may add at most this many nodes to what the file itself holds.
ALIAS_EXPANSION_LIMIT = 10_000

_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_SCALARS = yaml.constructor.SafeConstructor()
_CONVERT = {
    "tag:yaml.org,2002:int": _SCALARS.construct_yaml_int,
    "tag:yaml.org,2002:float": _SCALARS.construct_yaml_float,
    "tag:yaml.org,2002:bool": _SCALARS.construct_yaml_bool,
    "tag:yaml.org,2002:null": _SCALARS.construct_yaml_null,
}

PathElem = str | int
DocPath = tuple[PathElem, ...]


def format_path(path: Sequence[object]) -> str:
    """Render a document path as `domains["example.com"].dkim[0]`."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
            continue
        text = str(elem)
        if text.replace("_", "a").replace("-", "a").isalnum() and not text[:1].isdigit():
            out += f".{text}" if out else text
        else:
            out += f'["{text}"]'
    return out


@dataclass
class Document:
    """Data loaded from one YAML file, with the node tree to locate paths in it. A config
    of several files (includes.py) has a `route`: a path in the merged data -> the file's
    Document and the path there, so every reason names the right FILE:LINE:COL."""

    file: str
    data: Any
    root: yaml.Node | None = field(repr=False, default=None)
    # Problems found while constructing (duplicate keys, tags); reported with the rest.
    problems: list[Reason] = field(default_factory=list)
    # Derived values that several checks need (e.g. normalised senders), computed once.
    memo: dict[str, Any] = field(repr=False, default_factory=dict)
    templated: bool = False  # the text holds `${` (variables to substitute, envvars.py)
    route: Callable[[DocPath], tuple[Document, DocPath]] | None = field(repr=False, default=None)

    def locate(self, path: DocPath, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the node at `path`, or of the deepest found. With
        `at_key`, a path ending in a mapping key points at the key itself (where an
        unknown key should be reported) instead of its value. Routed in a merged config."""
        if self.route is not None and (routed := self.route(path))[0] is not self:
            return routed[0].locate(routed[1], at_key)
        node = self.root
        if node is None:
            return 1, 1
        for i, elem in enumerate(path):
            child = _child(node, elem, at_key and i == len(path) - 1)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1, node.start_mark.column + 1

    def reason(
        self, path: DocPath, message: str, *, at_key: bool = False, severity: str = "error"
    ) -> Reason:
        doc, local = (self, path) if self.route is None else self.route(path)
        line, col = doc.locate(local, at_key)
        return Reason(doc.file, line, col, format_path(local), message, severity)

    def mention(self, path: DocPath) -> str:
        """`senders[3]`; with several files, where: `senders[3] at teams/a.yaml:5:5`."""
        if self.route is None:
            return format_path(path)
        doc, local = self.route(path)
        line, col = doc.locate(local)
        return f"{format_path(local)} at {doc.file}:{line}:{col}"


def _child(node: yaml.Node, elem: PathElem, want_key: bool) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(elem, int):
        return node.value[elem] if 0 <= elem < len(node.value) else None
    if isinstance(node, yaml.MappingNode):
        for key, value in _pairs(node):
            if isinstance(key, yaml.ScalarNode) and key.value == str(elem):
                return key if want_key else value
    return None


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """Key/value node pairs with merge keys expanded; explicit keys come last."""
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    explicit: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in node.value:
        if key.tag != _MERGE:
            explicit.append((key, value))
            continue
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for src in sources:
            if isinstance(src, yaml.MappingNode):
                merged.extend(_pairs(src))
    return merged + explicit


def load_document(path: Path, display_name: str | None = None) -> Document:
    """Read and construct `path`.

    Raises ConfigError when the file cannot be read or parsed at all; problems
    that still leave usable data (duplicate keys, tags) go to `problems`.
    """
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Reason(name, 1, 1, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Reason(name, 1, 1, "", f"cannot read file: {exc}")]) from None
    return load_text(text, name)


def load_text(text: str, name: str) -> Document:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        msg = f"invalid YAML: {exc.problem or exc.context}"
        if "${" in "".join(text.splitlines()[line - 1 : line]):
            msg += " (inside [ ] or { }, quote a value that holds ${...})"
        raise ConfigError([Reason(name, line, col, "", msg)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Reason(name, 1, 1, "", f"invalid YAML: {exc}")]) from None
    doc = Document(name, None, root, templated="${" in text)
    if root is None:
        return doc
    if "*" in text:
        _check_alias_expansion(doc, root)
    builder = _Builder(doc)
    try:
        doc.data = builder.build(root, ())
    except RecursionError:
        raise ConfigError([doc.reason((), "YAML nests too deeply")]) from None
    doc.problems = builder.reasons
    return doc


def _check_alias_expansion(doc: Document, root: yaml.Node) -> None:
    sizes: dict[int, int] = {}
    seen_twice: list[yaml.Node] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            seen_twice.append(node)
            return sizes[key]
        sizes[key] = 1  # guards against recursive aliases
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        sizes[key] = 1 + sum(size(c) for c in children)
        return sizes[key]

    try:
        expanded = size(root)
    except RecursionError:
        raise ConfigError([doc.reason((), "YAML nests too deeply")]) from None
    extra = expanded - len(sizes)
    if extra > ALIAS_EXPANSION_LIMIT:
        worst = max(seen_twice, key=lambda n: sizes[id(n)])
        line, col = worst.start_mark.line + 1, worst.start_mark.column + 1
        msg = (
            f"YAML aliases expand this document by {extra} nodes "
            f"(limit {ALIAS_EXPANSION_LIMIT}); the anchor here is reused too often"
        )
        raise ConfigError([Reason(doc.file, line, col, "", msg)])


class _Builder:
    """Constructs plain data from nodes, collecting duplicate-key reasons."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.reasons: list[Reason] = []

    def build(self, node: yaml.Node, path: DocPath) -> Any:
        if node.tag.startswith("!"):
            self._add(node, path, f"YAML tag {node.tag} is not supported here")
            return node.value if isinstance(node, yaml.ScalarNode) else None
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            convert = _CONVERT.get(node.tag)
            if convert is None:
                return node.value
            try:
                value = convert(node)
                if isinstance(value, float):  # checked against the schema later, cheaply
                    self.doc.memo.setdefault("floats", []).append((path, value))
                return value
            except (ValueError, KeyError, TypeError):
                kind = node.tag.rsplit(":", 1)[-1]
                self._add(node, path, f"{node.value!r} is not a valid {kind}")
                return node.value
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, yaml.MappingNode)  # the only other kind of node
        return self._mapping(node, path)

    def _mapping(self, node: yaml.MappingNode, path: DocPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first: dict[Any, yaml.Node] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self._merge_source(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._add(key_node, path, "mapping keys must be plain scalars")
                continue
            key = key_node.value  # keys are names: `yes:` or `1.5:` stay strings
            if key in first:
                prior = first[key].start_mark
                self._add(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first defined at line {prior.line + 1}, "
                    f"column {prior.column + 1})",
                )
                continue
            first[key] = key_node
            out[key] = self.build(value_node, (*path, key))
        if merged:
            return {**merged, **out}
        return out

    def _merge_source(self, node: yaml.Node, path: DocPath) -> dict[Any, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        result: dict[Any, Any] = {}
        for src in reversed(sources):  # earlier sources win, as YAML specifies
            if not isinstance(src, yaml.MappingNode):
                self._add(src, path, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            result.update(self._mapping(src, path))
        return result

    def _add(self, node: yaml.Node, path: DocPath, message: str) -> None:
        mark = node.start_mark
        self.reasons.append(
            Reason(self.doc.file, mark.line + 1, mark.column + 1, format_path(path), message)
        )
