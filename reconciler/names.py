"""Syntax of the names a config holds: domains, DNS labels, selectors, user names.

Email addresses are the contract's (relay/contract/addresses.py): both planes read
them the same way."""

from __future__ import annotations

import re

from relay.contract.addresses import LABEL_PATTERN, normalize_address, split_address

__all__ = ["NAME", "is_domain", "is_label", "is_selector", "normalize_address", "split_address"]

_UNDERSCORE_LABEL = re.compile(r"_?[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_LABEL = re.compile(LABEL_PATTERN)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def is_label(text: str) -> bool:
    return _LABEL.fullmatch(text) is not None


def is_domain(text: str, allow_underscore: bool = False) -> bool:
    """A fully qualified host name of at least two labels, without a trailing dot."""
    if not text or len(text) > 253:
        return False
    labels = text.split(".")
    if len(labels) < 2 or labels[-1].isdigit():
        return False
    pattern = _UNDERSCORE_LABEL if allow_underscore else _LABEL
    return all(pattern.fullmatch(label) for label in labels)


def is_selector(text: str) -> bool:
    """A DKIM selector: one or more DNS labels joined by dots (RFC 6376 3.1)."""
    return bool(text) and len(text) <= 63 and all(is_label(p) for p in text.split("."))
