"""DKIM key pairs: made with `cryptography` at apply time, or read from a PEM file by
`postform import` (a key another provider publishes)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from reconciler.errors import PostformError
from relay.contract.dkim import DKIM_ALGORITHMS, dkim_algorithm

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

MIN_RSA_BITS = 2048  # RFC 8301: verifiers may fail shorter keys


class KeyFileError(PostformError):
    """A private key file that cannot be imported (unreadable, malformed, wrong kind)."""


def generate_dkim_key(algorithm: str) -> tuple[str, str]:
    """(private key PEM, public key as a DKIM `p=` value) for `algorithm`.

    RSA public keys are the base64 SubjectPublicKeyInfo (RFC 6376); Ed25519
    public keys are the raw 32 bytes in base64 (RFC 8463 section 4.2).
    """
    # cryptography is imported here, by apply: plan and validate never make a key.
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    bits = dkim_algorithm(algorithm).rsa_bits  # ValueError for an unknown one
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if bits is None:
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return _pair(key)


def _pair(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> tuple[str, str]:
    """(PKCS#8 PEM without a passphrase, DKIM `p=` value) of a private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if isinstance(key, ed25519.Ed25519PrivateKey):
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode(), base64.b64encode(public).decode()


def dkim_key_from_pem(data: bytes, algorithm: str, source: str) -> tuple[str, str]:
    """(private key PEM as apply stores it, DKIM `p=` value) of the key in `data`: PEM,
    PKCS#8 or traditional RSA ("BEGIN RSA PRIVATE KEY"), unencrypted; RSA of at least
    2048 bits or Ed25519, and of the declared `algorithm`. KeyFileError naming `source`
    otherwise (the key itself is never part of a message)."""
    key = _load(data, source)
    kind, bits = _describe(key, source)
    wanted = dkim_algorithm(algorithm)
    if kind == "rsa" and bits < MIN_RSA_BITS:
        raise KeyFileError(
            f"{source} holds a {bits}-bit RSA key: DKIM keys must have at least "
            f"{MIN_RSA_BITS} bits (RFC 8301); receivers fail shorter ones"
        )
    if kind == "ed25519" and wanted.rsa_bits is None:
        return _pair(key)
    if kind == "rsa" and wanted.rsa_bits == bits:
        return _pair(key)
    found = "an Ed25519 key" if kind == "ed25519" else f"a {bits}-bit RSA key"
    fits = _algorithm_for(kind, bits)
    hint = f"declare algorithm: {fits} for it" if fits else "postform cannot sign with it"
    raise KeyFileError(
        f"{source} holds {found}, but the configuration declares algorithm {algorithm} for "
        f"this selector: {hint}, or import the right key"
    )


def _load(data: bytes, source: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    if b"ENCRYPTED" in data:
        raise KeyFileError(
            f"{source} is encrypted with a passphrase: decrypt it first (for example "
            "`openssl pkey -in KEY -out PLAIN`), import PLAIN, then delete PLAIN"
        )
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(
            f"{source} is not a PEM private key (expected -----BEGIN PRIVATE KEY----- or "
            "-----BEGIN RSA PRIVATE KEY-----, unencrypted)"
        ) from None
    except Exception as exc:  # cryptography's UnsupportedAlgorithm and the like
        raise KeyFileError(f"{source}: the key cannot be read ({type(exc).__name__})") from None


def _describe(key: Any, source: str) -> tuple[str, int]:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519", 256
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa", key.key_size
    raise KeyFileError(
        f"{source} holds a {type(key).__name__.removeprefix('_')} key: DKIM keys are RSA "
        "(at least 2048 bits) or Ed25519"
    )


def _algorithm_for(kind: str, bits: int) -> str | None:
    for name, algorithm in DKIM_ALGORITHMS.items():
        if (algorithm.rsa_bits is None) == (kind == "ed25519") and (
            kind == "ed25519" or algorithm.rsa_bits == bits
        ):
            return name
    return None
