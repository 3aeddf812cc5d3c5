"""Secrets sealed at rest: DKIM private keys and password hashes in the state, its
history, the published relay policy and every relay's cached copy.

AES-256-GCM under a key derived from a passphrase with scrypt. The derivation's
parameters, its salt and a check value are recorded beside the ciphertexts (the
document's `sealing` header, as OpenTofu records its key provider's metadata), so a
wrong passphrase is a clear error, never garbage. Each value is bound to where it
belongs (its context: the resource and field) as associated data, so a sealed value
copied elsewhere in the document does not open. The control plane copies sealed values
from the state into the policy unchanged; relays open them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from relay.contract.errors import UserError

PREFIX = "sealed:v1:"
METHOD, KDF = "aes-256-gcm", "scrypt"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
_CHECK = "postform"


class SealingError(UserError):
    """A secret cannot be sealed or opened: no passphrase, a wrong one, damaged data."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def dkim_context(domain: str, selector: str) -> str:
    return f'dkim["{domain}/{selector}"].private_key'


def credential_context(user: str, name: str) -> str:
    return f'credential["{user}/{name}"].password_hash'


def read_passphrase(env: str | None, key_file: Path | None) -> bytes | None:
    """The passphrase from the environment variable or the key file; None when the
    variable is unset. A key file that cannot be read is an error naming it."""
    if env:
        value = os.environ.get(env)
        return value.encode() if value else None
    if key_file is not None:
        try:
            data = key_file.read_bytes().strip()
        except OSError as exc:
            raise SealingError(f"cannot read the key file {key_file}: {exc.strerror}") from None
        if not data:
            raise SealingError(f"the key file {key_file} is empty")
        return data
    return None


@functools.lru_cache(maxsize=8)
def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    # scrypt with these parameters costs ~0.1 s: once per document and process.
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


class Sealer:
    def __init__(self, key: bytes, header: dict[str, Any]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self.header = header

    @classmethod
    def new(cls, passphrase: bytes) -> Sealer:
        salt = os.urandom(16)
        header: dict[str, Any] = {
            "method": METHOD,
            "kdf": KDF,
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": base64.b64encode(salt).decode(),
        }
        sealer = cls(_derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P), header)
        header["check"] = sealer.seal(_CHECK, "check")
        return sealer

    @classmethod
    def from_header(cls, header: Any, passphrase: bytes, what: str) -> Sealer:
        """The sealer of a document's header; SealingError when the header is damaged or
        the passphrase is not the one the document was sealed with."""
        try:
            if header["method"] != METHOD or header["kdf"] != KDF:
                raise SealingError(f"{what} is sealed with {header['method']}/{header['kdf']}")
            salt = base64.b64decode(header["salt"], validate=True)
            key = _derive(passphrase, salt, int(header["n"]), int(header["r"]), int(header["p"]))
            sealer = cls(key, dict(header))
            try:
                ok = sealer.open(header["check"], "check") == _CHECK
            except SealingError:
                raise SealingError(
                    f"the passphrase does not open {what}: it was sealed with another one"
                ) from None
        except SealingError:
            raise
        except (KeyError, TypeError, ValueError):
            raise SealingError(f"{what} has a damaged sealing header") from None
        if not ok:
            raise SealingError(f"{what} has a damaged sealing header")
        return sealer

    def seal(self, value: str, context: str) -> str:
        nonce = os.urandom(12)
        data = self._aead.encrypt(nonce, value.encode(), context.encode())
        return PREFIX + base64.b64encode(nonce + data).decode()

    def open(self, value: str, context: str) -> str:
        from cryptography.exceptions import InvalidTag

        if not is_sealed(value):
            raise SealingError(f"{context} is not a sealed value")
        try:
            raw = base64.b64decode(value[len(PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()
        except InvalidTag:
            raise SealingError(
                f"{context} does not open with this passphrase (a wrong passphrase, or the "
                "value was damaged or moved)"
            ) from None
        except ValueError:
            raise SealingError(f"{context} is a damaged sealed value") from None
