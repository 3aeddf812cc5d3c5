"""Sealing secrets at rest: AES-256-GCM under a scrypt-derived key."""

from __future__ import annotations

import time

import pytest

from relay.contract.sealing import Sealer, SealingError, is_sealed


def test_a_sealed_value_opens_only_with_its_passphrase_and_in_its_place() -> None:
    sealer = Sealer.new(b"correct horse")
    sealed = sealer.seal("-----BEGIN PRIVATE KEY-----\nabc", 'dkim["a/b"].private_key')
    assert is_sealed(sealed) and "PRIVATE KEY" not in sealed
    assert sealer.open(sealed, 'dkim["a/b"].private_key').startswith("-----BEGIN")
    with pytest.raises(SealingError, match="does not open"):
        sealer.open(sealed, 'dkim["a/c"].private_key')  # moved to another resource
    again = Sealer.from_header(sealer.header, b"correct horse", "the state")
    assert again.open(sealed, 'dkim["a/b"].private_key').startswith("-----BEGIN")
    with pytest.raises(SealingError, match="sealed with another one"):
        Sealer.from_header(sealer.header, b"wrong horse", "the state")


def test_the_header_records_the_derivation_and_a_damaged_one_is_named() -> None:
    header = Sealer.new(b"p").header
    assert header["method"] == "aes-256-gcm" and header["kdf"] == "scrypt"
    assert header["n"] >= 2**14 and len(header["salt"]) >= 22 and is_sealed(header["check"])
    with pytest.raises(SealingError, match="damaged sealing header"):
        Sealer.from_header({**header, "salt": "!!"}, b"p", "the state")


def test_tampering_is_detected() -> None:
    sealer = Sealer.new(b"p")
    sealed = sealer.seal("secret", "ctx")
    flipped = sealed[:-4] + ("A" if sealed[-4] != "A" else "B") + sealed[-3:]
    with pytest.raises(SealingError):
        sealer.open(flipped, "ctx")


def test_the_key_is_derived_once_per_document() -> None:
    header = Sealer.new(b"slow to guess").header
    started = time.perf_counter()
    for _ in range(20):
        Sealer.from_header(header, b"slow to guess", "the state")
    assert time.perf_counter() - started < 1.0  # 20 x scrypt(2^15) would take seconds
