"""The SMTP password hash format: apply writes it, the relay checks against it.

`scrypt$N$r$p$salt$hash` (base64 salt and hash): scrypt with n=2^14, r=8, p=1,
a 16-byte salt and a 32-byte hash. Only the hash is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: n=2^14, r=8, p=1 (about 50 ms here); the relay caches successful checks.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1

# A well-formed hash of no password: checking an unknown username against it costs the
# same as checking a known one, so timing does not tell which usernames exist.
DUMMY_HASH = (
    "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The stored form of `password`, with a fresh 16-byte salt unless one is given."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches the stored hash (False for a malformed hash)."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)
