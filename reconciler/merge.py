"""Merging the files of a split config (includes.py) into one Document that still
locates every path in the file it came from.

Lists are concatenated (each file's part remembered by its first index, so a path is
routed with one bisect); mappings take every file's keys (a key's file remembered only
for sections that more than one file declares); a scalar may repeat with the same value.
Only a config with `include:` comes here.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from reconciler.errors import Reason
from reconciler.yamlload import DocPath, Document

INCLUDE = "include"
ROOT_ONLY = frozenset({"state"})

_KINDS: dict[type, str] = {list: "a list", dict: "a mapping"}


class _Section:
    """One top-level key of the merged data and the files that declare it."""

    def __init__(self, key: str, doc: Document, value: Any) -> None:
        self.key = key
        self.first = doc
        self.value: Any = list(value) if type(value) is list else value
        if type(value) is dict:
            self.value = dict(value)
        self.starts = [0]  # lists: where each file's items begin
        self.docs = [doc]
        self.owners: dict[Any, Document] = {}  # mappings: the file of each key

    def join(self, doc: Document, value: Any) -> list[Reason]:
        kind = type(self.value)
        if type(value) is not kind or kind not in _KINDS:
            return self._scalar(doc, value)
        self.docs.append(doc)
        if kind is list:
            self.starts.append(len(self.value))
            self.value.extend(value)
            return []
        if not self.owners:
            self.owners = dict.fromkeys(self.value, self.first)
        reasons = []
        for key, item in value.items():
            owner = self.owners.get(key)
            if owner is None:
                self.owners[key] = doc
                self.value[key] = item
                continue
            line, col = owner.locate((self.key, key), at_key=True)
            reasons.append(
                doc.reason(
                    (self.key, key),
                    f"duplicate key {key!r} (first defined at {owner.file}:{line}:{col})",
                    at_key=True,
                )
            )
        return reasons

    def _scalar(self, doc: Document, value: Any) -> list[Reason]:
        if type(value) is type(self.value) and value == self.value:
            return []  # `version: 1` in every file
        line, col = self.first.locate((self.key,))
        kinds = {type(self.value), type(value)}
        what = (
            f"{self.key} is {_KINDS.get(type(self.value), 'a value')} in {self.first.file}:"
            f"{line}:{col} and {_KINDS.get(type(value), 'a value')} here"
            if kinds & set(_KINDS)
            else f"{self.key} is {self.value!r} in {self.first.file}:{line}:{col}"
        )
        return [doc.reason((self.key,), f"{what}: the files of a config must agree", at_key=True)]

    def route(self, path: DocPath) -> tuple[Document, DocPath]:
        if len(path) < 2 or len(self.docs) == 1:
            return self.first, path
        if type(self.value) is list and isinstance(path[1], int):
            i = bisect_right(self.starts, path[1]) - 1
            return self.docs[i], (path[0], path[1] - self.starts[i], *path[2:])
        return self.owners.get(path[1], self.first), path

    def shift(self, doc: Document, path: DocPath) -> DocPath:
        """A path in `doc` as a path in the merged data."""
        if type(self.value) is list and len(path) > 1 and isinstance(path[1], int):
            for start, owner in zip(self.starts, self.docs, strict=True):
                if owner is doc:
                    return (path[0], path[1] + start, *path[2:])
        return path


def merge(docs: list[Document]) -> Document:
    """One Document of `docs` (the root first), routing paths back to each file."""
    root = docs[0]
    sections: dict[str, _Section] = {}
    reasons: list[Reason] = []
    for doc in docs:
        reasons.extend(_add(root, doc, sections))

    def route(path: DocPath) -> tuple[Document, DocPath]:
        section = sections.get(str(path[0])) if path else None
        return (root, path) if section is None else section.route(path)

    merged = Document(root.file, {k: s.value for k, s in sections.items()}, root.root)
    merged.route = route
    merged.problems = [r for doc in docs for r in doc.problems] + reasons
    merged.memo["files"] = [doc.file for doc in docs]
    merged.memo["unresolved"] = {s for doc in docs for s in doc.memo.get("unresolved", ())}
    merged.memo["floats"] = [
        (sections[str(p[0])].shift(doc, p), value)
        for doc in docs
        for p, value in doc.memo.get("floats", [])
        if p and str(p[0]) in sections
    ]
    return merged


def _add(root: Document, doc: Document, sections: dict[str, _Section]) -> list[Reason]:
    if doc.data is None:
        return []  # an empty file
    if not isinstance(doc.data, dict):
        return [doc.reason((), "an included file holds top-level sections (a mapping)")]
    reasons = []
    for key, value in doc.data.items():
        if key == INCLUDE:
            continue
        if key in ROOT_ONLY and doc is not root:
            msg = (
                f"belongs in the root config file ({root.file}): the relay's "
                "commands read it from there alone"
            )
            reasons.append(doc.reason((key,), msg, at_key=True))
            continue
        section = sections.get(key)
        if section is None or section.value is None:
            sections[key] = _Section(key, doc, value)
        elif value is not None:
            reasons.extend(section.join(doc, value))
    return reasons
