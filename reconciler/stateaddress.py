"""Resource addresses as commands take them: `relay`, `dkim["example.com/s1"]`."""

from __future__ import annotations

import re

from reconciler.errors import PostformError
from reconciler.resources import SINGLETONS, TYPE_ORDER

_ADDRESS = re.compile(r'(?P<type>[a-z]+)(?:\["(?P<name>[^"]+)"\])?')


def parse_address(text: str) -> tuple[str, str | None]:
    """(type, name) of an address; PostformError saying how to write one otherwise."""
    match = _ADDRESS.fullmatch(text.strip())
    if match is None or match["type"] not in TYPE_ORDER:
        raise PostformError(
            f'{text!r} is not a resource address: write TYPE["NAME"] with TYPE one of '
            f"{', '.join(TYPE_ORDER)} (quote it for the shell: 'user[\"app\"]')"
        )
    rtype, name = match["type"], match["name"]
    if (rtype in SINGLETONS) != (name is None):
        shape = rtype if rtype in SINGLETONS else f'{rtype}["NAME"]'
        raise PostformError(f"{text!r} is not a resource address: write {shape}")
    return rtype, name
