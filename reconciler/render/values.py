"""How attribute values look in a rendered plan (shared by text and Markdown)."""

from __future__ import annotations

import json
from typing import Any

from reconciler.plan import UNKNOWN_TEXT

__all__ = ["SENSITIVE_TEXT", "UNKNOWN_TEXT", "flatten", "show"]

SENSITIVE_TEXT = "(sensitive value)"


def flatten(attrs: dict[str, Any] | None) -> dict[str, Any]:
    """One level of nesting shown as dotted keys: dmarc.policy, dmarc.rua."""
    out: dict[str, Any] = {}
    for key, value in (attrs or {}).items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out


def show(value: Any) -> str:
    if type(value) is str and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'  # what json.dumps gives, without its cost on 100k-row plans
    return json.dumps(value, ensure_ascii=False)
