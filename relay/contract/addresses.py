"""Email address syntax, as both planes read it.

Approved senders keep their local part as written and compare domains without
case (`NoReply@Example.COM` is `NoReply@example.com`): `normalize_address`
checks and normalises what a config declares, `normalize` normalises what a
client sends (already parsed by the SMTP layer) without checking it again.
"""

from __future__ import annotations

import functools
import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# One DNS label: letters, digits and inner hyphens, at most 63 characters.
LABEL_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LOCAL = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_DOMAIN = re.compile(rf"(?:{LABEL_PATTERN}\.)+{LABEL_PATTERN}")

# ASCII dot-atom addresses only: what the outbound client can send unchanged (no quoted
# local parts, no control characters, no SMTPUTF8).
PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def split_address(text: str) -> tuple[str, str] | None:
    """(local part, lower-cased domain) of a valid address, else None. A dot-atom local
    part holds no "@", so the last "@" splits; domains repeat (100,000 senders over a
    thousand domains), so each is checked once."""
    local, at, domain = text.rpartition("@")
    if not at or len(text) > 254 or len(local) > 64 or _LOCAL.fullmatch(local) is None:
        return None
    checked = _checked_domain(domain)
    return None if checked is None else (local, checked)


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    """The domain lower-cased when it is a valid host name with a non-numeric TLD."""
    if _DOMAIN.fullmatch(domain) is None or domain.rsplit(".", 1)[1].isdigit():
        return None
    return domain.lower()


def normalize_address(text: str) -> str | None:
    """A valid address with its domain lower-cased (local parts are case-sensitive),
    else None."""
    parts = split_address(text)
    if parts is None:
        return None
    # Most addresses are written lower-case already: keep the string rather than remake it.
    return text if text.endswith(parts[1]) else f"{parts[0]}@{parts[1]}"


def normalize(address: str) -> str:
    """The domain lower-cased, the local part as written; no syntax check."""
    local, sep, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if sep else address


def domain_of(address: str) -> str:
    """The lower-cased domain of an address ('' when it has none)."""
    return address.rpartition("@")[2].lower()
