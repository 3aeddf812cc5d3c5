"""VERP return paths (bounces+<queue id>-<mac>@<return path domain>): which message and
recipient a bounce message is about, and proof that the relay sent it.

The MAC is HMAC-SHA256 over the queue id and the recipient, under a key only the relay
knows (the bounce key, kept in the data folder), cut to 80 bits and written in base32:
a forged bounce cannot name a message and a recipient the relay did not send, so it
cannot suppress an address. The recipient itself is not in the address (it may be long):
a bounce names it (Final-Recipient, Original-Recipient) and the MAC confirms it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

PREFIX = "bounces+"
KEY_FILE = "bounce.key"
_TOKEN = re.compile(r"bounces\+([0-9a-f]{24})-([a-z2-7]{16})", re.IGNORECASE)


@dataclass(frozen=True)
class Token:
    queue_id: str
    mac: str


class Verp:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a bounce key has at least 16 bytes")
        self._key = key

    def _mac(self, queue_id: str, recipient: str) -> str:
        data = f"{queue_id}\0{recipient.lower()}".encode()
        digest = hmac.new(self._key, data, hashlib.sha256).digest()[:10]
        return base64.b32encode(digest).decode().lower()

    def address(self, queue_id: str, recipient: str, domain: str) -> str:
        return f"{PREFIX}{queue_id}-{self._mac(queue_id, recipient)}@{domain}"

    def verify(self, token: Token, recipient: str) -> bool:
        return hmac.compare_digest(token.mac, self._mac(token.queue_id, recipient))


def parse_token(address: str, domains: frozenset[str] | set[str]) -> Token | None:
    """The token of `address` when it is a VERP address at one of `domains`, else None."""
    local, _, domain = address.rpartition("@")
    if domain.lower() not in domains:
        return None
    match = _TOKEN.fullmatch(local)
    if match is None:
        return None
    return Token(match.group(1).lower(), match.group(2).lower())


def load_key(folder: Path) -> bytes:
    """The relay's bounce key: created once (32 random bytes, mode 0600) in `folder`."""
    path = folder / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{KEY_FILE}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # the first writer wins; others read what it wrote
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()
