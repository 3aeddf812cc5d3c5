"""Email address syntax, as both planes read it.

Approved senders keep their local part as written and compare domains without
case (`NoReply@Example.COM` is `NoReply@example.com`): `normalize_address`
checks and normalises what a config declares, `normalize` normalises what a
client sends (already parsed by the SMTP layer) without checking it again.
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# One DNS label: letters, digits and inner hyphens, at most 63 characters.
LABEL_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"({_ATEXT}(?:\.{_ATEXT})*)@((?:{LABEL_PATTERN}\.)+{LABEL_PATTERN})")

# ASCII dot-atom addresses only: what the outbound client can send unchanged (no quoted
# local parts, no control characters, no SMTPUTF8).
PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


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
    """A valid address with its domain lower-cased (local parts are case-sensitive),
    else None."""
    parts = split_address(text)
    return None if parts is None else f"{parts[0]}@{parts[1]}"


def normalize(address: str) -> str:
    """The domain lower-cased, the local part as written; no syntax check."""
    local, sep, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if sep else address


def domain_of(address: str) -> str:
    """The lower-cased domain of an address ('' when it has none)."""
    return address.rpartition("@")[2].lower()
