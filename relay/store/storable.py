"""Text from elsewhere (a remote server's bounce reply, an operator's note) as a store
takes it: no NUL (PostgreSQL refuses it), valid UTF-8 (aiosmtplib keeps undecodable
bytes as surrogates, which neither SQLite nor PostgreSQL can encode)."""

from __future__ import annotations


def storable(value: str | None) -> str | None:
    if value is None:
        return None
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
