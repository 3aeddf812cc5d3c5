"""The relay policy's wire form: the one writer and the one reader of the JSON document
(RelayPolicy.to_dict / from_dict delegate here). The reader checks the version first,
types every field it reads, and opens sealed secrets with a relay's passphrase.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from relay.contract.dkim import DKIM_ALGORITHMS, DkimStatus
from relay.contract.policy import (
    POLICY_FORMAT,
    POLICY_VERSION,
    Credential,
    DomainPolicy,
    PolicyError,
    PolicyVersionError,
    RelayPolicy,
    SigningKey,
)
from relay.contract.sealing import Sealer, SealingError, credential_context, dkim_context
from relay.contract.senderset import SenderSet
from relay.contract.settings import (
    Limits,
    RelaySettings,
    SessionSettings,
    Smarthost,
    TlsFiles,
    Webhook,
    delivery_settings,
)
from relay.contract.suppression import SuppressionReason


def to_document(policy: RelayPolicy) -> dict[str, Any]:
    return {
        "format": POLICY_FORMAT,
        "version": POLICY_VERSION,
        "serial": policy.serial,
        "revision": policy.revision,
        "lineage": policy.lineage,
        "published_at": policy.published_at,
        "relay": _relay_dict(policy.relay),
        "limits": asdict(policy.limits),
        "domains": {name: _domain_dict(d) for name, d in sorted(policy.domains.items())},
        "senders": sorted(policy.senders),
        "users": {u: None if s is None else sorted(s) for u, s in sorted(policy.users.items())},
        "credentials": {
            c.username: {"user": c.user, "name": c.name, "password_hash": c.password_hash}
            for c in policy.credentials.values()
        },
        "suppressions": {a: str(r) for a, r in sorted(policy.suppressions.items())},
        "dns_health": {d: dict(v) for d, v in sorted(policy.dns_health.items())},
        "sealing": None if policy.sealing is None else dict(policy.sealing),
    }


def from_document(
    data: Any, passphrase: bytes | None = None, *, keep_sealed: bool = False
) -> RelayPolicy:
    check_version(data)
    try:
        if data.get("sealing") and not keep_sealed:
            data = _opened(data, passphrase)
        return _parse(data)
    except SealingError as exc:
        raise PolicyError(f"the relay policy's secrets cannot be opened: {exc}") from None
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


def _opened(data: dict[str, Any], passphrase: bytes | None) -> dict[str, Any]:
    """A copy of the document with its private keys and password hashes opened."""
    if passphrase is None:
        raise SealingError(
            "they are encrypted, and this relay has no passphrase: set the environment "
            "variable (or key file) the config's state.encryption names"
        )
    sealer = Sealer.from_header(data["sealing"], passphrase, "the relay policy")
    domains = {
        name: {
            **body,
            "dkim": [
                {
                    **k,
                    "private_key": sealer.open(k["private_key"], dkim_context(name, k["selector"])),
                }
                for k in body["dkim"]
            ],
        }
        for name, body in data["domains"].items()
    }
    credentials = {
        username: {
            **c,
            "password_hash": sealer.open(
                c["password_hash"], credential_context(c["user"], c["name"])
            ),
        }
        for username, c in data["credentials"].items()
    }
    return {**data, "domains": domains, "credentials": credentials}


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
        "proxy_from": list(relay.proxy_from),
        "store": relay.store,
        "sessions": asdict(relay.sessions),
        "webhooks": [{**asdict(w), "events": list(w.events)} for w in relay.webhooks],
        "event_retention_days": relay.event_retention_days,
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
        senders=SenderSet(_typed(data["senders"], list, "senders")),
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
        dns_health=_dns_health(data.get("dns_health", {})),
        sealing=data.get("sealing"),
    )


def _dns_health(value: Any) -> dict[str, dict[str, str]]:
    """{domain: {"spf"|"dkim"|"dmarc"|"checked_on": text}}: what the last check saw."""
    out: dict[str, dict[str, str]] = {}
    for domain, checks in _typed(value, dict, "dns_health").items():
        body = _typed(checks, dict, f"dns_health.{domain}")
        out[str(domain)] = {
            str(k): _typed(v, str, f"dns_health.{domain}.{k}") for k, v in body.items()
        }
    return out


def _parse_relay(relay: dict[str, Any]) -> RelaySettings:
    tls, smarthost = relay["tls"], relay["smarthost"]
    return RelaySettings(
        hostname=_typed(relay["hostname"], str, "relay.hostname"),
        listen=tuple(_typed(relay["listen"], list, "relay.listen")),
        tls=None if tls is None else TlsFiles(**tls),
        data_dir=relay["data_dir"],
        smarthost=None if smarthost is None else Smarthost(**smarthost),
        delivery=delivery_settings(_typed(relay["delivery"], dict, "relay.delivery")),
        proxy_from=tuple(_typed(relay.get("proxy_from", []), list, "relay.proxy_from")),
        store=_typed(relay.get("store", "embedded"), str, "relay.store"),
        sessions=SessionSettings(**_typed(relay.get("sessions", {}), dict, "relay.sessions")),
        webhooks=tuple(
            _parse_webhook(_typed(w, dict, "a webhook"))
            for w in _typed(relay.get("webhooks", []), list, "relay.webhooks")
        ),
        event_retention_days=_typed(
            relay.get("event_retention_days", 30), int, "relay.event_retention_days"
        ),
    )


def _parse_webhook(hook: dict[str, Any]) -> Webhook:
    name = _typed(hook["name"], str, "a webhook's name")
    what = f"relay.webhooks[{name}]"
    events = _typed(hook["events"], list, f"{what}.events")
    if not all(isinstance(e, str) for e in events):
        raise TypeError(f"{what}.events holds a value that is not a string")
    timeout = hook.get("timeout", 10.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError(f"{what}.timeout is {type(timeout).__name__}, expected a number")
    return Webhook(
        name=name,
        url=_typed(hook["url"], str, f"{what}.url"),
        events=tuple(events),
        secret_env=_typed(hook["secret_env"], str, f"{what}.secret_env"),
        timeout=float(timeout),
        max_pending=_typed(hook.get("max_pending", 100_000), int, f"{what}.max_pending"),
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
