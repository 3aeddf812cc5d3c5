"""The `state:` section of a config, read without building the rest of the document.

The relay's commands need only where the state (and its policy) lives: reading a
postform.yaml of 100,000 senders whole took 2-4 s of a relay's start. The file is
streamed through PyYAML's C parser until the top-level `state:` key's value has been
read (skipping the values before it event by event, without building them); that value
alone is turned back into YAML and loaded, and its `${NAME}` variables substituted.
Anything unusual (a parse error, an alias into the skipped part, a variable that is not
set, a section the schema refuses) gives None, and the caller loads the whole config,
which reports the problem at its file:line:column. `state:` is always in the root file
(an included file may not hold it), so the files a config includes are never read here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import yaml

from reconciler.envvars import expand
from reconciler.schema import load_schema

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # PyYAML without libyaml too
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def state_section(path: Path) -> dict[str, Any] | None:
    """The top-level `state:` mapping ({} when there is none), or None when it cannot be
    read this way."""
    try:
        with path.open("rb") as stream:
            loader = _LOADER(stream)
            try:
                events = _section(loader, "state")
            finally:
                loader.dispose()
        if events is None:
            return {}
        value = yaml.safe_load(yaml.emit(_document(events)))
        section = {} if value is None else _expanded(value)
        _validator()(section)
    except (OSError, yaml.YAMLError, fastjsonschema.JsonSchemaException, ValueError):
        return None
    return section if isinstance(section, dict) else None


def _expanded(value: Any) -> Any:
    """`value` with its environment variables substituted (raises Unresolved, a
    ValueError, when one is not set)."""
    if isinstance(value, str):
        return expand(value) if "${" in value else value
    if isinstance(value, dict):
        return {k: _expanded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expanded(v) for v in value]
    return value


def _section(loader: Any, key: str) -> list[Any] | None:
    """The events of the top-level `key`'s value; None when the document has no such key."""
    for expected in (yaml.StreamStartEvent, yaml.DocumentStartEvent):
        if not isinstance(loader.get_event(), expected):
            raise ValueError("not a YAML document")
    if not isinstance(loader.get_event(), yaml.MappingStartEvent):
        raise ValueError("not a mapping at the top")
    while not isinstance(loader.peek_event(), yaml.MappingEndEvent):
        name = loader.get_event()
        if not isinstance(name, yaml.ScalarEvent):
            raise ValueError("a top-level key that is not a plain name")
        value = _subtree(loader, keep=name.value == key)
        if name.value == key:
            return value
    return None


def _subtree(loader: Any, keep: bool) -> list[Any]:
    """One node's events (a scalar, or a collection through its end); kept only when
    `keep` (a skipped value of 100,000 senders is never held)."""
    first = loader.get_event()
    events: list[Any] = [first] if keep else []
    depth = 1 if isinstance(first, _OPEN) else 0
    while depth:
        event = loader.get_event()
        if keep:
            events.append(event)
        depth += isinstance(event, _OPEN) - isinstance(event, _CLOSE)
    return events


def _document(events: list[Any]) -> list[Any]:
    return [
        yaml.StreamStartEvent(),
        yaml.DocumentStartEvent(explicit=False),
        *events,
        yaml.DocumentEndEvent(explicit=False),
        yaml.StreamEndEvent(),
    ]


@cache
def _validator() -> Any:
    return fastjsonschema.compile(load_schema("postform.schema.json")["properties"]["state"])
