"""The relay policy: the one document the control plane publishes and relays enforce.

Frozen, typed, versioned. `to_dict`/`from_dict` (policydoc.py) are its only wire form, and
`from_dict` checks the version first: a relay meets a document written by a
newer postform with a clear PolicyVersionError (and keeps serving the last one
it understood) instead of misreading it. Each DKIM private key appears once.
The document holds only what a relay needs; DNS facts and descriptions stay in
the control plane's state.

Version history: 1 was an untyped object inside the state file (postform 0.1);
2 is this document, published on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from relay.contract.dkim import DkimStatus
from relay.contract.errors import UserError
from relay.contract.settings import (
    Limits,
    RelaySettings,
)
from relay.contract.suppression import SuppressionReason

POLICY_FORMAT = "postform-relay-policy"
POLICY_VERSION = 2


class PolicyError(UserError):
    """No usable policy: never published, unreadable, or damaged."""


class PolicyVersionError(PolicyError):
    """A policy document of a version this postform does not read."""


class PolicyMissing(PolicyError):
    """Nothing has been published yet."""


class PolicyUnavailable(PolicyError):
    """The source cannot be reached now; `cached` is the last copy this host kept."""

    def __init__(self, message: str, cached: RelayPolicy | None) -> None:
        super().__init__(message)
        self.cached = cached


@dataclass(frozen=True, slots=True)
class Credential:
    username: str
    user: str
    name: str
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: str
    private_key: str = field(repr=False)
    created_at: str = ""
    status: DkimStatus = DkimStatus.NEEDS_ATTENTION


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    return_path: str | None = None
    keys: tuple[SigningKey, ...] = ()

    def signing_key(self) -> SigningKey | None:
        """The newest ACTIVE key: a new selector signs only once it is verified."""
        active = [k for k in self.keys if k.status is DkimStatus.ACTIVE]
        return max(active, key=lambda k: (k.created_at, k.selector)) if active else None


@dataclass(frozen=True)
class RelayPolicy:
    serial: int
    lineage: str
    revision: int = 0  # observations (DKIM statuses) recorded since the serial's apply
    published_at: str = ""  # when the control plane published it (ISO 8601, UTC)
    relay: RelaySettings = field(default_factory=RelaySettings)
    limits: Limits = field(default_factory=Limits)
    domains: Mapping[str, DomainPolicy] = field(default_factory=dict)
    senders: Set[str] = frozenset()  # a SenderSet when read from a document
    users: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    credentials: Mapping[str, Credential] = field(default_factory=dict, repr=False)
    suppressions: Mapping[str, SuppressionReason] = field(default_factory=dict)
    # The last `dns verify` per domain ({"spf", "dkim", "dmarc": ok | missing | mismatch,
    # "checked_on": date}), for the dashboard: an observation, like DKIM statuses.
    dns_health: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # How private keys and password hashes are sealed, when they are (sealing.py). A relay
    # opens them when it reads the document; the control plane copies them sealed.
    sealing: Mapping[str, Any] | None = field(default=None, repr=False)
    # Derived once from `domains`; what the SMTP handler looks up per message.
    signing: Mapping[str, SigningKey] = field(init=False, repr=False)
    unsigned: frozenset[str] = field(init=False)  # domains with selectors, none ACTIVE
    return_paths: Mapping[str, str] = field(init=False)  # return-path domain -> its domain
    user_limit: int | None = field(init=False)  # one user's messages a minute; None: no cap

    def __post_init__(self) -> None:
        signing: dict[str, SigningKey] = {}
        unsigned: set[str] = set()
        for name, domain in self.domains.items():
            key = domain.signing_key()
            if key is not None:
                signing[name] = key
            elif domain.keys:
                unsigned.add(name)
        paths = {d.return_path: name for name, d in self.domains.items() if d.return_path}
        object.__setattr__(self, "signing", signing)
        object.__setattr__(self, "unsigned", frozenset(unsigned))
        object.__setattr__(self, "return_paths", paths)
        share, rate = self.limits.user_share, self.limits.messages_per_minute
        user_limit = max(1, rate * share // 100) if len(self.users) > 1 and share < 100 else None
        object.__setattr__(self, "user_limit", user_limit)

    @functools.cached_property
    def label_domains(self) -> frozenset[str]:
        """Domains a metric label may name: declared, of approved senders, of return
        paths. Computed on first use (a relay's loader touches it on its thread; a plan
        never needs it)."""
        labels = {a[a.find("@") + 1 :] for a in self.senders}
        labels.update(self.domains, self.return_paths)
        return frozenset(labels)

    @property
    def version(self) -> tuple[int, int]:
        """(serial, revision): a relay reloads when it changes."""
        return (self.serial, self.revision)

    def allowed(self, user: str, address: str) -> bool:
        """May `user` send as `address`? A user a later apply removed may send as nobody."""
        if user not in self.users:
            return False
        allowed = self.users[user]
        return allowed is None or address in allowed

    def to_dict(self) -> dict[str, Any]:
        from relay.contract.policydoc import to_document

        return to_document(self)

    @classmethod
    def from_dict(
        cls, data: Any, passphrase: bytes | None = None, *, keep_sealed: bool = False
    ) -> RelayPolicy:
        """Read a document; PolicyVersionError for another version, PolicyError when it is
        not a policy, is damaged (the message says where), or its secrets do not open with
        `passphrase`. With `keep_sealed` sealed secrets stay as they are (the control plane
        compares stored forms and never needs them)."""
        from relay.contract.policydoc import from_document

        return from_document(data, passphrase, keep_sealed=keep_sealed)
