"""Load, check and normalise a postform config file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import domainrules, names, rules, webhookrules
from reconciler.errors import ConfigError, Reason
from reconciler.includes import load_config_document
from reconciler.retirement import DEFAULT_RETENTION_DAYS
from reconciler.rules import address_entries, limits_of
from reconciler.schema import schema_reasons
from reconciler.sendertable import sender_table
from reconciler.state.settings import (
    DEFAULT_HISTORY,
    DEFAULT_SCHEMA,
    DEFAULT_STATE,
    Encryption,
    StateSettings,
)
from reconciler.yamlload import Document

DEFAULT_CONFIG = "postform.yaml"
DEFAULT_DNS_DIR = ".postform/dns"
DEFAULT_TTL = 3600

# The semantic checks, in the order their reasons are reported (each returns reasons).
CHECKS: tuple[rules.Check, ...] = (
    rules.check_state,
    rules.check_relay,
    webhookrules.check_webhooks,
    rules.check_limits,
    domainrules.check_domains,
    rules.check_senders,
    rules.check_users,
    rules.check_suppressions,
    domainrules.check_dns_inputs,
    domainrules.warn_unsigned,
    domainrules.check_retention,
)


@dataclass(frozen=True)
class Config:
    """A valid config, normalised: domains lower-cased, defaults filled in."""

    file: Path
    state: StateSettings
    relay: dict[str, Any] | None
    limits: dict[str, int]
    domains: dict[str, dict[str, Any]]
    senders: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    suppressions: dict[str, dict[str, Any]]
    dns_dir: Path = Path(DEFAULT_DNS_DIR)
    dns_ttl: int = DEFAULT_TTL
    dkim_retention_days: float = DEFAULT_RETENTION_DAYS
    warnings: list[Reason] = field(default_factory=list)

    @property
    def state_path(self) -> Path:
        """The local backend's state file."""
        return self.state.path


def load_config(path: Path) -> Config:
    """Load `path` (and the files it includes), raising ConfigError with every error
    found at once, in file order (the root first), then line and column."""
    doc = load_config_document(path)
    checked = schema_reasons(doc) + [r for check in CHECKS for r in check(doc)]
    if "unresolved" in doc.memo:  # a ${NAME} that was not substituted is reported once
        spots = doc.memo["unresolved"]
        checked = [r for r in checked if (r.file, r.line, r.column) not in spots]
    reasons = doc.problems + checked
    errors = [r for r in reasons if r.severity == "error"]
    if errors:
        rank = {name: i for i, name in enumerate(doc.memo.get("files", [doc.file]))}
        raise ConfigError(
            sorted(errors, key=lambda r: (rank.get(r.file, len(rank)), r.line, r.column))
        )
    warnings = [r for r in reasons if r.severity != "error"]
    return _normalise(path, doc, warnings)


def _normalise(path: Path, doc: Document, warnings: list[Reason]) -> Config:
    data: dict[str, Any] = doc.data
    dns = data.get("dns") or {}
    return Config(
        file=path,
        state=state_settings(path, data.get("state") or {}),
        dns_dir=_beside(path, dns.get("output_dir", DEFAULT_DNS_DIR)),
        dns_ttl=dns.get("ttl", DEFAULT_TTL),
        dkim_retention_days=dns.get("dkim_retention_days", DEFAULT_RETENTION_DAYS),
        relay=_relay(data.get("relay")),
        limits=limits_of(data),
        domains=_domains(data.get("domains") or {}),
        senders=_senders(doc),
        users=_users(data.get("users") or {}),
        suppressions=_suppressions(data),
        warnings=warnings,
    )


def _beside(config: Path, value: str) -> Path:
    """`value` as a path, relative to the config file's folder unless absolute."""
    target = Path(value)
    return target if target.is_absolute() else config.resolve().parent / target


def state_settings(config: Path, state: dict[str, Any]) -> StateSettings:
    backend = state.get("backend", "local")
    state_file = _beside(config, state.get("path", DEFAULT_STATE))
    encryption = state.get("encryption")
    key_file = encryption.get("key_file") if encryption else None
    return StateSettings(
        backend=backend,
        path=state_file,
        folder=state_file.parent if backend == "local" else _beside(config, ".postform"),
        name=state.get("name"),
        dsn_env=state.get("dsn_env"),
        schema=state.get("schema", DEFAULT_SCHEMA),
        history=state.get("history", DEFAULT_HISTORY),
        relay_role=state.get("relay_role"),
        encryption=Encryption(
            passphrase_env=encryption.get("passphrase_env"),
            key_file=_beside(config, key_file) if key_file else None,
        )
        if encryption
        else None,
    )


def _relay(relay: dict[str, Any] | None) -> dict[str, Any] | None:
    if relay is None:
        return None
    out: dict[str, Any] = {k: relay[k].lower() for k in ("hostname", "spf_domain") if k in relay}
    out["ipv4"] = list(relay.get("ipv4", []))
    out["ipv6"] = list(relay.get("ipv6", []))
    for key in (
        "listen", "tls", "data_dir", "smarthost", "delivery", "proxy_from", "store", "sessions",
        "webhooks", "event_retention_days",
    ):  # fmt: skip
        if key in relay:
            out[key] = relay[key]
    if "webhooks" in out:  # keys in the state's order, so an unchanged one shows as such
        out["webhooks"] = [dict(sorted(hook.items())) for hook in out["webhooks"]]
    return out


def _domains(domains: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, body in domains.items():
        body = body or {}
        out[name.lower()] = {
            "spf": body.get("spf", True),
            "dmarc": body.get("dmarc"),
            "description": body.get("description"),
            "return_path": body["return_path"].lower() if body.get("return_path") else None,
            "dkim": [
                {
                    "selector": d["selector"].lower(),
                    "algorithm": d.get("algorithm", "rsa-2048"),
                    "activation": d.get("activation", "dns"),
                    "description": d.get("description"),
                }
                for d in body.get("dkim", [])
            ],
        }
    return out


def _senders(doc: Document) -> dict[str, dict[str, Any]]:
    """Each sender's attributes (no None values: the resource's attributes as they are)."""
    table = sender_table(doc)
    out: dict[str, dict[str, Any]] = {
        key: {"domain": domain}
        for key, domain in zip(table.keys, table.domains, strict=True)
        if key is not None  # validated: none is None
    }
    for row, i in enumerate(table.index):
        item = table.items[i]
        if type(item) is dict and item.get("description") is not None:
            out[str(table.keys[row])]["description"] = item["description"]
    return out


def _users(users: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, body in users.items():
        body = body or {}
        allowed = body.get("senders")
        out[name] = {
            "senders": None
            if allowed is None
            else sorted({names.normalize_address(a) or a for a in allowed}),
            "credentials": list(body.get("credentials", [])),
            "description": body.get("description"),
        }
    return out


def _suppressions(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    items = data.get("suppressions") or []
    for i, address, _ in address_entries(data, "suppressions"):
        item = items[i]
        reason = item.get("reason", "MANUAL") if isinstance(item, dict) else "MANUAL"
        description = item.get("description") if isinstance(item, dict) else None
        out[names.normalize_address(address) or address] = {
            "reason": reason.upper(),
            "description": description,
        }
    return out
