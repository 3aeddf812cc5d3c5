"""The relay policy: the one document the control plane publishes and relays enforce.

Frozen, typed, versioned. `to_dict`/`from_dict` are its only wire form, and
`from_dict` checks the version first: a relay meets a document written by a
newer postform with a clear PolicyVersionError (and keeps serving the last one
it understood) instead of misreading it. Each DKIM private key appears once.
The document holds only what a relay needs; DNS facts and descriptions stay in
the control plane's state.

Version history: 1 was an untyped object inside the state file (postform 0.1);
2 is this document, published on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from relay.contract.dkim import DKIM_ALGORITHMS, DkimStatus
from relay.contract.errors import UserError
from relay.contract.settings import (
    DeliverySettings,
    Limits,
    RelaySettings,
    Smarthost,
    TlsFiles,
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
    senders: frozenset[str] = frozenset()
    users: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    credentials: Mapping[str, Credential] = field(default_factory=dict, repr=False)
    suppressions: Mapping[str, SuppressionReason] = field(default_factory=dict)
    # Derived once from `domains`; what the SMTP handler looks up per message.
    signing: Mapping[str, SigningKey] = field(init=False, repr=False)
    unsigned: frozenset[str] = field(init=False)  # domains with selectors, none ACTIVE
    return_paths: Mapping[str, str] = field(init=False)  # return-path domain -> its domain

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
        return {
            "format": POLICY_FORMAT,
            "version": POLICY_VERSION,
            "serial": self.serial,
            "revision": self.revision,
            "lineage": self.lineage,
            "published_at": self.published_at,
            "relay": _relay_dict(self.relay),
            "limits": asdict(self.limits),
            "domains": {name: _domain_dict(d) for name, d in sorted(self.domains.items())},
            "senders": sorted(self.senders),
            "users": {u: None if s is None else sorted(s) for u, s in sorted(self.users.items())},
            "credentials": {
                c.username: {"user": c.user, "name": c.name, "password_hash": c.password_hash}
                for c in self.credentials.values()
            },
            "suppressions": {a: str(r) for a, r in sorted(self.suppressions.items())},
        }

    @classmethod
    def from_dict(cls, data: Any) -> RelayPolicy:
        """Read a document; PolicyVersionError for another version, PolicyError when it is
        not a policy or is damaged (the message says where)."""
        check_version(data)
        try:
            return _parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PolicyError(f"the policy document is damaged: {_describe(exc)}") from None


def check_version(data: Any) -> None:
    if not isinstance(data, dict) or data.get("format") != POLICY_FORMAT:
        raise PolicyError("not a postform relay policy document")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PolicyError(f"the policy document has no valid version ({version!r})")
    if version > POLICY_VERSION:
        raise PolicyVersionError(
            f"the policy is version {version}, newer than this postform reads "
            f"({POLICY_VERSION}): upgrade postform on this relay"
        )
    if version < POLICY_VERSION:
        raise PolicyVersionError(
            f"the policy is version {version}, older than this postform reads "
            f"({POLICY_VERSION}): run `postform apply` with this version to republish it"
        )


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def _relay_dict(relay: RelaySettings) -> dict[str, Any]:
    return {
        "hostname": relay.hostname,
        "listen": list(relay.listen),
        "tls": None if relay.tls is None else asdict(relay.tls),
        "data_dir": relay.data_dir,
        "smarthost": None if relay.smarthost is None else asdict(relay.smarthost),
        "delivery": asdict(relay.delivery),
    }


def _domain_dict(domain: DomainPolicy) -> dict[str, Any]:
    return {
        "return_path": domain.return_path,
        "dkim": [
            {
                "selector": k.selector,
                "algorithm": k.algorithm,
                "status": str(k.status),
                "created_at": k.created_at,
                "private_key": k.private_key,
            }
            for k in domain.keys
        ],
    }


def _typed(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{what} is {type(value).__name__}, expected {kind.__name__}")
    return value


def _strings(values: Any, what: str) -> frozenset[str]:
    out = frozenset(_typed(values, list, what))
    if not all(isinstance(v, str) for v in out):
        raise TypeError(f"{what} holds a value that is not a string")
    return out


def _parse(data: dict[str, Any]) -> RelayPolicy:
    users = _typed(data["users"], dict, "users")
    return RelayPolicy(
        serial=_typed(data["serial"], int, "serial"),
        lineage=_typed(data["lineage"], str, "lineage"),
        revision=_typed(data.get("revision", 0), int, "revision"),
        published_at=_typed(data.get("published_at", ""), str, "published_at"),
        relay=_parse_relay(_typed(data["relay"], dict, "relay")),
        limits=Limits(**{k: _typed(v, int, k) for k, v in data["limits"].items()}),
        domains={
            _typed(name, str, "a domain name"): _parse_domain(name, body)
            for name, body in _typed(data["domains"], dict, "domains").items()
        },
        senders=_strings(data["senders"], "senders"),
        users={
            u: None if s is None else _strings(s, f"users.{u}.senders") for u, s in users.items()
        },
        credentials={
            username: Credential(username, c["user"], c["name"], c["password_hash"])
            for username, c in _typed(data["credentials"], dict, "credentials").items()
        },
        suppressions={
            _typed(a, str, "a suppressed address"): SuppressionReason(r)
            for a, r in _typed(data["suppressions"], dict, "suppressions").items()
        },
    )


def _parse_relay(relay: dict[str, Any]) -> RelaySettings:
    tls, smarthost = relay["tls"], relay["smarthost"]
    return RelaySettings(
        hostname=_typed(relay["hostname"], str, "relay.hostname"),
        listen=tuple(_typed(relay["listen"], list, "relay.listen")),
        tls=None if tls is None else TlsFiles(**tls),
        data_dir=relay["data_dir"],
        smarthost=None if smarthost is None else Smarthost(**smarthost),
        delivery=DeliverySettings(**relay["delivery"]),
    )


def _parse_domain(name: str, body: dict[str, Any]) -> DomainPolicy:
    keys = []
    for k in _typed(body["dkim"], list, f"domains.{name}.dkim"):
        if k["algorithm"] not in DKIM_ALGORITHMS:
            raise ValueError(f"domains.{name}: unknown DKIM algorithm {k['algorithm']!r}")
        keys.append(
            SigningKey(
                name,
                _typed(k["selector"], str, "a selector"),
                k["algorithm"],
                _typed(k["private_key"], str, "a private key"),
                _typed(k["created_at"], str, "created_at"),
                DkimStatus(k["status"]),
            )
        )
    return DomainPolicy(body["return_path"], tuple(keys))
