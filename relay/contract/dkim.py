"""DKIM vocabulary shared by both planes: a selector's status and the algorithms."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DkimStatus(StrEnum):
    """A selector's lifecycle, as OCI Email Delivery names it: only ACTIVE ones sign."""

    NEEDS_ATTENTION = "NEEDS_ATTENTION"
    ACTIVE = "ACTIVE"


@dataclass(frozen=True, slots=True)
class DkimAlgorithm:
    name: str  # postform's name, as the config writes it
    a_tag: str  # the signature's a= value (RFC 6376, RFC 8463)
    k_tag: str  # the key record's k= value
    rsa_bits: int | None  # None for Ed25519


DKIM_ALGORITHMS: dict[str, DkimAlgorithm] = {
    a.name: a
    for a in (
        DkimAlgorithm("rsa-2048", "rsa-sha256", "rsa", 2048),
        DkimAlgorithm("rsa-3072", "rsa-sha256", "rsa", 3072),
        DkimAlgorithm("rsa-4096", "rsa-sha256", "rsa", 4096),
        DkimAlgorithm("ed25519", "ed25519-sha256", "ed25519", None),
    )
}


def dkim_algorithm(name: str) -> DkimAlgorithm:
    """The algorithm called `name`; ValueError for one postform does not know."""
    try:
        return DKIM_ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown DKIM algorithm {name!r}") from None
