"""Resources: the addressable things a config declares, and their schema.

A resource's `attributes` are what the user declared (normalised, no None
values, JSON types only, so that a stored copy compares equal); its
`computed` values (keys, credentials) are made at apply and live only in the
state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # config.py reads the DKIM retention default (retirement.py) from here
    from reconciler.config import Config

# Dependency order: a thing comes after everything it refers to.
TYPE_ORDER = ("relay", "limits", "domain", "dkim", "sender", "user", "credential", "suppression")
TYPE_RANK = {name: i for i, name in enumerate(TYPE_ORDER)}
SINGLETONS = frozenset({"relay", "limits"})

# Attributes whose change cannot be applied in place (the key pair must be remade).
FORCES_REPLACEMENT: dict[str, frozenset[str]] = {"dkim": frozenset({"algorithm"})}
COMPUTED: dict[str, tuple[str, ...]] = {
    "dkim": ("public_key", "private_key", "created_at", "status"),
    "credential": ("username", "password_hash", "created_at"),
}
SENSITIVE = frozenset({"private_key", "password_hash"})
# Computed values a plan cannot know: a DKIM status follows from `activation`, so it is not here.
MADE_AT_APPLY: dict[str, tuple[str, ...]] = {
    "dkim": ("public_key", "private_key", "created_at"),
    "credential": ("username", "password_hash", "created_at"),
}


def address(rtype: str, name: str | None) -> str:
    return rtype if name is None else f'{rtype}["{name}"]'


@dataclass(frozen=True, slots=True)
class Resource:
    type: str
    name: str | None
    attributes: dict[str, Any]

    @property
    def address(self) -> str:
        return address(self.type, self.name)


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None}


def desired_resources(config: Config) -> dict[str, Resource]:
    """Every resource `config` declares, keyed by address."""
    out: dict[str, Resource] = {}

    def add(rtype: str, name: str | None, attrs: dict[str, Any]) -> None:
        out[address(rtype, name)] = Resource(rtype, name, _clean(attrs))

    if config.relay is not None:
        add("relay", None, config.relay)
    add("limits", None, config.limits)
    for domain, body in config.domains.items():
        add(
            "domain",
            domain,
            {
                "spf": body["spf"],
                "dmarc": body["dmarc"],
                "return_path": body["return_path"],
                "description": body["description"],
            },
        )
        for key in body["dkim"]:
            add(
                "dkim",
                f"{domain}/{key['selector']}",
                {
                    "domain": domain,
                    "selector": key["selector"],
                    "algorithm": key["algorithm"],
                    "activation": key["activation"],
                    "description": key["description"],
                },
            )
    for sender, body in config.senders.items():  # already without None (100,000 of them)
        out[f'sender["{sender}"]'] = Resource("sender", sender, body)
    for user, body in config.users.items():
        add("user", user, {"senders": body["senders"], "description": body["description"]})
        for cred in body["credentials"]:
            add("credential", f"{user}/{cred}", {"user": user})
    for supp, body in config.suppressions.items():
        add("suppression", supp, body)
    return out
