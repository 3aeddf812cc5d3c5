"""`postform fmt`: the canonical layout of a config and of every file it includes.

ruamel.yaml's round trip indents (2 spaces for mappings; sequence dashes 2 spaces under
their key) and keeps comments, quoting, flow style and block scalars (skipped when
fmtcheck.py finds the layout already canonical: it is slow on large files); then
fmtlayout.py puts keys in the schema's order and indents comments like what they
describe. The environment is not read: `${NAME}` stays as written.

A result is kept only if it loads to the same data as the file did and holds the same
comments; otherwise fmt refuses that file (and says so) rather than change what it
means. Files are replaced atomically, keeping their mode.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError, PostformError
from reconciler.fmtcheck import canonical_layout
from reconciler.fmtlayout import arrange
from reconciler.includes import INCLUDE, collect
from reconciler.yamlload import load_document, load_text
from relay.durable import atomic_write


@dataclass(frozen=True)
class Formatted:
    path: Path
    name: str  # as messages name it (relative to where the root config was named)
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def config_files(config: Path) -> list[tuple[str, Path]]:
    """The root config and every file it includes, (name, path) each, root first."""
    root = load_document(config, str(config))
    if not (isinstance(root.data, dict) and INCLUDE in root.data):
        return [(root.file, config)]
    files, reasons = collect(root, config, load_document)
    if reasons:
        raise ConfigError(reasons)
    return [(doc.file, path) for doc, path in files]


def format_config(config: Path) -> list[Formatted]:
    """Every file of the config at `config`, formatted (nothing is written)."""
    out = []
    for name, path in config_files(config):
        before = _read(path, name)
        out.append(Formatted(path, name, before, format_text(before, name)))
    return out


def write(result: Formatted) -> None:
    """Replace the file with its formatted text, atomically, keeping its mode."""
    mode = os.stat(result.path).st_mode & 0o7777
    atomic_write(result.path, result.after.encode("utf-8"), mode=mode)


def format_text(text: str, name: str = "<text>") -> str:
    """`text` in the canonical layout; PostformError if that would change its data or
    lose a comment, ConfigError if it is not YAML or holds duplicate keys or tags."""
    before = load_text(text, name)  # located errors for a file that does not parse
    if before.problems:  # duplicate keys, tags: what the file means is not clear yet
        raise ConfigError(before.problems)
    if before.data is None:
        return text
    laid_out = canonical_layout(text, before.root)
    after = arrange(text if laid_out else _round_trip(text, name))
    if load_text(after, name).data != before.data:
        raise PostformError(
            f"{name}: formatting would change what the file means (a YAML construct fmt "
            "cannot keep); it was left as it is: format it by hand"
        )
    if _comments(after) != _comments(text):
        raise PostformError(
            f"{name}: formatting would move or lose a comment fmt cannot place; it was left "
            "as it is: format it by hand"
        )
    return after


def _round_trip(text: str, name: str) -> str:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line
    yaml.brace_single_entry_mapping_in_flow_sequence = True  # [{selector: s1}]
    try:
        data = yaml.load(text)
        stream = io.StringIO()
        yaml.dump(data, stream)
    except Exception as exc:  # ruamel.yaml raises more than YAMLError (a bad !!bool, ...)
        raise PostformError(f"{name}: fmt cannot read it: {exc!r}") from None
    return stream.getvalue()


def _comments(text: str) -> Counter[str]:
    """Every comment's text, full-line or after a value (a `#` after a space or at the
    start of a line, outside quotes): compared, not parsed, so it errs toward refusing."""
    found: Counter[str] = Counter()
    for line in text.splitlines():
        at = _comment_start(line)
        if at is not None:
            found[line[at:].rstrip()] += 1
    return found


def _comment_start(line: str) -> int | None:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
    return None


def _read(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PostformError(f"{name}: cannot read it: {exc}") from None
