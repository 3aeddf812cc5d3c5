"""JSON Schema validation of a loaded config, with every error located.

The schema in ``schemas/postform.schema.json`` is the single source of truth.
A compiled validator (fastjsonschema) answers the common "is it valid?" fast;
only an invalid document pays for jsonschema's full walk, which collects every
error with its path so each can be reported at FILE:LINE:COL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastjsonschema

from reconciler.errors import Reason
from reconciler.yamlload import Document

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator, ValidationError

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
    "number": "a number",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("reconciler.schemas").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _fast(name: str) -> Callable[[Any], Any]:
    schema = dict(load_schema(name))
    schema.pop("$schema", None)  # the keywords used are common to draft 7 and 2020-12
    return fastjsonschema.compile(schema)


@cache
def _full(name: str) -> Draft202012Validator:
    import jsonschema  # slow to import; only an invalid document needs it

    return jsonschema.Draft202012Validator(load_schema(name))


def is_valid(name: str, data: Any) -> bool:
    try:
        _fast(name)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def number_reasons(doc: Document, name: str = "postform.schema.json") -> list[Reason]:
    """What JSON Schema lets through: 5.0 where an integer is wanted (it counts as one),
    and NaN or infinity anywhere (they would poison the state and the plan). Only the
    floats the loader saw are checked, so a large document costs nothing extra."""
    out: list[Reason] = []
    for path, value in doc.memo.get("floats", []):
        if value != value or value in (float("inf"), float("-inf")):
            out.append(doc.reason(path, f"{value!r} is not a finite number"))
            continue
        types = _schema_at(load_schema(name), path).get("type")
        wanted = types if isinstance(types, list) else [types]
        # a fractional value gets the schema's own "expected an integer"
        if "integer" in wanted and "number" not in wanted and value.is_integer():
            out.append(
                doc.reason(
                    path, f"{value!r} must be a whole number (write it without a decimal point)"
                )
            )
    return out


def _schema_at(schema: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    for elem in path:
        if isinstance(elem, int):
            items = schema.get("items", {})
            schema = items if isinstance(items, dict) else {}
        else:
            extra = schema.get("additionalProperties")
            schema = schema.get("properties", {}).get(
                elem, extra if isinstance(extra, dict) else {}
            )
    return schema


def schema_reasons(doc: Document, name: str = "postform.schema.json") -> list[Reason]:
    """Every schema violation in `doc`, located; empty when it is valid."""
    if is_valid(name, doc.data):
        return number_reasons(doc, name)
    reasons: list[Reason] = number_reasons(doc, name)
    errors = sorted(_full(name).iter_errors(doc.data), key=lambda e: list(map(str, e.path)))
    for err in errors:
        reasons.extend(_translate(doc, err))
    return reasons


def _translate(doc: Document, err: ValidationError) -> list[Reason]:
    path = tuple(err.absolute_path)
    kind, value, inst = str(err.validator), err.validator_value, err.instance
    if kind == "additionalProperties" and isinstance(inst, dict):
        schema = err.schema if isinstance(err.schema, Mapping) else {}
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in inst if k not in allowed]
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return [doc.reason((*path, k), f"unknown key {k!r}{hint}", at_key=True) for k in extra]
    return [doc.reason(path, _message(kind, value, inst, err.message))]


def _message(kind: str, value: Any, inst: Any, default: str) -> str:
    if kind == "type":
        wanted = value if isinstance(value, list) else [value]
        names = " or ".join(_TYPE_NAMES.get(str(w), str(w)) for w in wanted)
        return f"expected {names}, got {_describe(inst)}"
    if kind == "required":
        return default.replace("is a required property", "is required")
    if kind == "enum":
        return f"{inst!r} is not one of: {', '.join(map(str, value))}"
    if kind == "const":
        return f"must be {value!r}, got {inst!r}"
    if kind in ("minimum", "maximum"):
        word = "at least" if kind == "minimum" else "at most"
        return (
            f"{inst!r} is too {'small' if kind == 'minimum' else 'large'}: must be {word} {value}"
        )
    if kind == "pattern":
        return f"{inst!r} is not a valid name (letters, digits, '.', '_', '-'; at most 63)"
    return default


def _describe(inst: Any) -> str:
    for py, label in (
        (bool, "true/false"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a mapping"),
    ):
        if isinstance(inst, py):
            return f"{label} ({inst!r})" if py in (bool, int, float, str) else label
    return "nothing" if inst is None else type(inst).__name__
