"""TSIG keys in the BIND key-file format that `tsig-keygen` writes (Knot and BIND read it)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

import dns.name
import dns.tsig
import dns.tsigkeyring

from reconciler.errors import PostformError

ALGORITHMS = frozenset(
    {"hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}
)
_KEY = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{(.*?)\}\s*;', re.S)
_ALGORITHM = re.compile(r"algorithm\s+\"?([\w.-]+)\"?\s*;")
_SECRET = re.compile(r'secret\s+"([^"]+)"\s*;')


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: str  # base64; never printed

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({self.name: (self.algorithm, self.secret)})

    def __repr__(self) -> str:
        return f"TsigKey(name={self.name!r}, algorithm={self.algorithm!r}, secret=<redacted>)"


def read_key_file(path: Path) -> TsigKey:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PostformError(f"cannot read TSIG key file {path}: {exc.strerror}") from None
    match = _KEY.search(text)
    secret = _SECRET.search(match[2]) if match else None
    if match is None or secret is None:
        raise PostformError(
            f"{path} is not a TSIG key file: expected "
            'key "NAME" { algorithm hmac-sha256; secret "BASE64"; };'
        )
    algorithm = _ALGORITHM.search(match[2])
    name = algorithm[1].lower() if algorithm else "hmac-sha256"
    if name not in ALGORITHMS:
        raise PostformError(
            f"{path}: TSIG algorithm {name!r} is not one of {', '.join(sorted(ALGORITHMS))}"
        )
    try:
        base64.b64decode(secret[1], validate=True)
    except binascii.Error:
        raise PostformError(f"{path}: the secret of key {match[1]} is not base64") from None
    return TsigKey(match[1], name, secret[1])
