"""DKIM key pairs, made with `cryptography` at apply time."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from relay.contract.dkim import dkim_algorithm

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


def generate_dkim_key(algorithm: str) -> tuple[str, str]:
    """(private key PEM, public key as a DKIM `p=` value) for `algorithm`.

    RSA public keys are the base64 SubjectPublicKeyInfo (RFC 6376); Ed25519
    public keys are the raw 32 bytes in base64 (RFC 8463 section 4.2).
    """
    # cryptography is imported here, by apply: plan and validate never make a key.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    bits = dkim_algorithm(algorithm).rsa_bits  # ValueError for an unknown one
    key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if bits is None:
        key = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode(), base64.b64encode(public).decode()
