"""A config split over several files: `include:` of files, folders and patterns.

    include: [teams/, shared/domains.yaml]     # relative to the file that says it

Each entry is a file, a folder (its *.yaml and *.yml files, sorted by name) or a glob
pattern (matches sorted); an entry that finds no file is an error, since a file that
went missing would otherwise drop every sender it declared. Included files hold the
same top-level sections as the root file and may include further files; a file reached
twice, or a cycle, is an error. The root's own sections come first, then each included
file depth first, in the order of the entries.

Sections merge: lists (senders, suppressions) are concatenated; mappings (domains, users,
relay, limits, dns) take the keys of every file, and a key declared in two files is an
error naming both; a scalar (version) may repeat only with the same value. `state:`
stays in the root file: the relay's commands read it from there alone (statesection.py).

The merged Document routes every path back to the file and node it came from, so each
reason is reported at the right FILE:LINE:COL. A config without `include:` is the root
Document itself: nothing here runs for it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.envvars import substitute
from reconciler.errors import ConfigError, Reason
from reconciler.merge import merge
from reconciler.yamlload import DocPath, Document, load_document

INCLUDE = "include"
Loader = Callable[[Path, str], Document]


def load_config_document(path: Path) -> Document:
    """The config at `path` with its environment variables substituted and its included
    files merged in; problems are in `problems` (ConfigError only when the root file
    cannot be read or parsed)."""
    root = load_file(path, str(path))
    if not (isinstance(root.data, dict) and INCLUDE in root.data):
        return root
    files, reasons = collect(root, path, load_file)
    merged = merge([doc for doc, _ in files])
    merged.problems[:0] = reasons
    return merged


def load_file(path: Path, name: str) -> Document:
    doc = load_document(path, name)
    substitute(doc)
    return doc


def collect(
    root: Document, path: Path, load: Loader
) -> tuple[list[tuple[Document, Path]], list[Reason]]:
    """The root and every file it includes, depth first, each with its path on disk;
    and the problems of the includes themselves (a file found twice, no match, ...)."""
    found = _Found(root, path, load)
    found.visit(root, path, [(path.resolve(), root.file)])
    return found.files, found.reasons


def entries(value: Any) -> list[tuple[DocPath, str | None]]:
    """(path, entry) of each entry of an `include:` value; None for a wrong type."""
    if isinstance(value, str):
        return [((INCLUDE,), value)]
    if isinstance(value, list) and value:
        return [
            ((INCLUDE, i), v if isinstance(v, str) and v else None) for i, v in enumerate(value)
        ]
    return [((INCLUDE,), None)]


def expand(base: Path, entry: str) -> list[Path]:
    """The files `entry` names, relative to the folder `base`: one file, a folder's YAML
    files or a pattern's matches, sorted; [] when there is none."""
    target = base / entry  # an absolute entry stays absolute
    if any(c in entry for c in "*?["):
        return [Path(p) for p in sorted(glob.glob(str(target))) if os.path.isfile(p)]
    if target.is_dir():
        return sorted(
            p
            for p in target.iterdir()
            if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
        )
    return [target] if target.is_file() else []


def display_name(parent: Document, base: Path, target: Path) -> str:
    """How reasons name an included file: relative to where the root file was named."""
    try:
        relative = target.relative_to(base)
    except ValueError:
        return str(target)
    return os.path.normpath(os.path.join(os.path.dirname(parent.file), relative))


class _Found:
    def __init__(self, root: Document, path: Path, load: Loader) -> None:
        self.load = load
        self.files: list[tuple[Document, Path]] = [(root, path)]
        self.reasons: list[Reason] = []
        self.seen: dict[Path, str] = {path.resolve(): f"{root.file} is the root config"}

    def visit(self, doc: Document, path: Path, stack: list[tuple[Path, str]]) -> None:
        data = doc.data
        if not (isinstance(data, dict) and INCLUDE in data):
            return
        for where, entry in entries(data[INCLUDE]):
            if entry is None:
                self.reasons.append(doc.reason(where, _WRONG_TYPE))
            elif "${" not in entry:  # envvars.py reports those
                self._entry(doc, path, where, entry, stack)

    def _entry(
        self, doc: Document, path: Path, where: DocPath, entry: str, stack: list[tuple[Path, str]]
    ) -> None:
        targets = expand(path.parent, entry)
        if not targets:
            self.reasons.append(doc.reason(where, _no_match(path.parent, entry)))
        for target in targets:
            real = target.resolve()
            name = display_name(doc, path.parent, target)
            if real in (p for p, _ in stack):
                chain = " -> ".join([n for _, n in stack] + [name])
                self.reasons.append(doc.reason(where, f"include cycle: {chain}"))
            elif real in self.seen:
                self.reasons.append(
                    doc.reason(where, f"{name} is included twice ({self.seen[real]})")
                )
            else:
                reason = doc.reason(where, "")
                self.seen[real] = f"also by {reason.file}:{reason.line}:{reason.column}"
                self._load(target, name, stack + [(real, name)])

    def _load(self, target: Path, name: str, stack: list[tuple[Path, str]]) -> None:
        try:
            child = self.load(target, name)
        except ConfigError as exc:  # unreadable or not YAML: reported, the rest still checked
            self.reasons.extend(exc.reasons)
            return
        self.files.append((child, target))
        self.visit(child, target, stack)


_WRONG_TYPE = "expected a file, a folder or a pattern (a string), or a list of them"


def _no_match(base: Path, entry: str) -> str:
    if any(c in entry for c in "*?["):
        kind = "the pattern matches no file"
    elif (base / entry).is_dir():
        kind = "the folder holds no .yaml or .yml file"
    else:
        kind = "no such file or folder"
    return (
        f"include {entry!r}: {kind} (relative to this file). A file that went missing "
        "would drop what it declares, so this is an error"
    )
