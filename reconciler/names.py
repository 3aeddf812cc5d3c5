"""Syntax of the names a config holds: email addresses, domains, DNS labels."""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_UNDERSCORE_LABEL = re.compile(r"_?[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?")
_LABEL_SRC = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{_LABEL_SRC}\.)+{_LABEL_SRC})")
_LABEL = re.compile(_LABEL_SRC)
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


def split_address(text: str) -> tuple[str, str] | None:
    """(local part, lower-cased domain) of a valid address, else None."""
    match = _ADDRESS.fullmatch(text)
    if match is None or len(text) > 254:
        return None
    local, domain = match.groups()
    if len(local) > 64 or domain.rsplit(".", 1)[1].isdigit():
        return None
    return local, domain.lower()


def normalize_address(text: str) -> str | None:
    """The address with its domain lower-cased (local parts are case-sensitive)."""
    parts = split_address(text)
    return None if parts is None else f"{parts[0]}@{parts[1]}"


def parse_listener(text: str) -> tuple[str, int, str] | None:
    """'HOST:PORT[/starttls|/tls]' -> (host, port, mode), or None when malformed."""
    address, _, mode = text.partition("/")
    mode = mode or "starttls"
    if mode not in ("starttls", "tls"):
        return None
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
    else:
        host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port), mode
