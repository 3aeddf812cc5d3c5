"""Build the relay policy (the contract in relay/contract/policy.py) from the state.

Every state write publishes it; it is what every relay enforces. Only applied
resources go in (what was not applied is not enforced), with the DKIM statuses
observed since (a selector turns ACTIVE when its record is verified live).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reconciler.dns.health import dns_health
from reconciler.retirement import RETIRED_AT
from reconciler.state.model import State
from relay.contract.dkim import DkimStatus
from relay.contract.policy import Credential, DomainPolicy, RelayPolicy, SigningKey
from relay.contract.settings import (
    Limits,
    RelaySettings,
    SessionSettings,
    Smarthost,
    TlsFiles,
    delivery_settings,
    webhook_settings,
)
from relay.contract.suppression import SuppressionReason, suppression_key

StoredResource = Mapping[str, Any]
DKIM_STATUS = "dkim_status"  # observations: selector address -> {status, created_at}


def effective_status(address: str, res: StoredResource, observed: Mapping[str, Any]) -> DkimStatus:
    """A selector's status: the last observation of this very key, else what apply set."""
    seen = observed.get(address)
    if isinstance(seen, dict) and seen.get("created_at") == res["computed"].get("created_at"):
        return DkimStatus(seen["status"])
    return DkimStatus(res["computed"].get("status", DkimStatus.NEEDS_ATTENTION))


def policy_for(state: State) -> RelayPolicy:
    """The policy of a state as it is stored (its serial, revision and observations),
    stamped with the time it is published."""
    policy = build_policy(
        state.resources,
        state.serial,
        state.lineage or "",
        revision=state.revision,
        observed=state.dns.get(DKIM_STATUS, {}),
    )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    health = dns_health(state.dns.get("verification", {}))
    # secrets copied sealed
    return replace(policy, published_at=now, sealing=state.sealing, dns_health=health)


def build_policy(
    resources: Mapping[str, StoredResource],
    serial: int,
    lineage: str,
    *,
    revision: int = 0,
    observed: Mapping[str, Any] | None = None,
) -> RelayPolicy:
    by_type: dict[str, list[StoredResource]] = {}
    for res in resources.values():
        by_type.setdefault(res["type"], []).append(res)
    relay = next(iter(by_type.get("relay", [])), None)
    limits = next(iter(by_type.get("limits", [])), None)
    return RelayPolicy(
        serial=serial,
        lineage=lineage,
        revision=revision,
        relay=relay_settings(relay["attributes"] if relay else {}),
        limits=Limits(**limits["attributes"]) if limits else Limits(),
        domains=_domains(
            by_type.get("domain", []), _signing(by_type.get("dkim", [])), observed or {}
        ),
        senders=frozenset(r["name"] for r in by_type.get("sender", [])),
        users={r["name"]: _senders(r["attributes"]) for r in by_type.get("user", [])},
        credentials=_credentials(by_type.get("credential", [])),
        suppressions={
            suppression_key(r["name"]): SuppressionReason(r["attributes"].get("reason", "MANUAL"))
            for r in by_type.get("suppression", [])
        },
    )


def relay_settings(attrs: Mapping[str, Any]) -> RelaySettings:
    """The relay's settings from the `relay` resource's attributes (defaults filled in)."""
    tls, smarthost = attrs.get("tls"), attrs.get("smarthost")
    defaults = RelaySettings()
    return RelaySettings(
        hostname=attrs.get("hostname") or defaults.hostname,
        listen=tuple(attrs.get("listen") or defaults.listen),
        tls=TlsFiles(tls["cert"], tls["key"]) if tls else None,
        data_dir=attrs.get("data_dir"),
        smarthost=Smarthost(**smarthost) if smarthost else None,
        delivery=delivery_settings(attrs.get("delivery") or {}),
        proxy_from=tuple(attrs.get("proxy_from") or ()),
        store=(attrs.get("store") or {}).get("backend", "embedded"),
        sessions=SessionSettings(**(attrs.get("sessions") or {})),
        webhooks=webhook_settings(attrs.get("webhooks") or ()),
        event_retention_days=attrs.get("event_retention_days", 30),
    )


def _signing(dkim: Iterable[StoredResource]) -> list[StoredResource]:
    """The selectors that may sign: a retired one (reconciler/retirement.py) keeps its DNS
    record for a while, but the relays no longer hold its key."""
    return [r for r in dkim if not r["attributes"].get(RETIRED_AT)]


def _senders(attrs: Mapping[str, Any]) -> frozenset[str] | None:
    allowed = attrs.get("senders")
    return None if allowed is None else frozenset(allowed)


def _domains(
    domains: Iterable[StoredResource], dkim: Iterable[StoredResource], observed: Mapping[str, Any]
) -> dict[str, DomainPolicy]:
    keys: dict[str, list[SigningKey]] = {}
    for res in dkim:
        attrs, computed = res["attributes"], res["computed"]
        keys.setdefault(attrs["domain"], []).append(
            SigningKey(
                attrs["domain"],
                attrs["selector"],
                attrs["algorithm"],
                computed["private_key"],
                computed["created_at"],
                effective_status(f'dkim["{res["name"]}"]', res, observed),
            )
        )
    out: dict[str, DomainPolicy] = {}
    for res in domains:
        own = sorted(keys.pop(res["name"], []), key=lambda k: (k.created_at, k.selector))
        out[res["name"]] = DomainPolicy(res["attributes"].get("return_path"), tuple(own))
    for name, orphans in keys.items():  # keys of a domain being destroyed in the same apply
        out[name] = DomainPolicy(None, tuple(sorted(orphans, key=lambda k: k.created_at)))
    return out


def _credentials(resources: Iterable[StoredResource]) -> dict[str, Credential]:
    out: dict[str, Credential] = {}
    for res in resources:
        computed = res["computed"]
        out[computed["username"]] = Credential(
            computed["username"],
            res["attributes"]["user"],
            res["name"].split("/", 1)[1],
            computed["password_hash"],
        )
    return out
