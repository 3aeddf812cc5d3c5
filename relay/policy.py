"""RelayPolicy: the applied state as the relay enforces it. The boundary with reconciler/.

Built from the `policy` object that apply writes into the state file; nothing
here reads the YAML config or imports the plan engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class PolicyError(Exception):
    """The state holds no usable policy (never applied, corrupt, or unreadable)."""


def normalize(address: str) -> str:
    """Local part as written, domain lower-cased: how approved senders are stored."""
    local, sep, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}" if sep else address


@dataclass(frozen=True)
class Credential:
    username: str
    user: str
    password_hash: str


@dataclass(frozen=True)
class SigningKey:
    domain: str
    selector: str
    algorithm: str
    private_key: str = field(repr=False)
    created_at: str = ""


@dataclass(frozen=True)
class Limits:
    recipients_per_day: int = 50_000
    messages_per_minute: int = 18_000
    max_message_bytes: int = 2 * 1024 * 1024


@dataclass(frozen=True)
class RelayPolicy:
    serial: int
    lineage: str
    hostname: str
    listen: tuple[str, ...]
    tls: dict[str, str] | None
    data_dir: str | None
    limits: Limits
    senders: frozenset[str]
    return_paths: dict[str, str]  # return-path domain -> the email domain it serves
    users: dict[str, frozenset[str] | None]
    credentials: dict[str, Credential] = field(repr=False)
    signing: dict[str, SigningKey] = field(repr=False)
    unsigned: frozenset[str]  # domains with DKIM selectors, none ACTIVE yet
    suppressions: dict[str, str]
    smarthost: dict[str, Any] | None = None
    delivery: dict[str, Any] = field(default_factory=dict)

    def allowed(self, user: str, address: str) -> bool:
        """May `user` send as `address` (an approved sender, or its return path)?"""
        if user not in self.users:
            return False  # a user removed by a later apply may send as nobody
        allowed = self.users[user]
        return allowed is None or address in allowed


def read_policy(state_path: Path) -> RelayPolicy:
    try:
        data = json.loads(state_path.read_bytes())
    except FileNotFoundError:
        raise PolicyError(f"no state at {state_path}: run `postform apply` first") from None
    except (OSError, ValueError) as exc:
        raise PolicyError(f"cannot read the applied policy from {state_path}: {exc}") from None
    policy = data.get("policy") if isinstance(data, dict) else None
    if not policy:
        raise PolicyError(f"{state_path} holds no applied policy: run `postform apply` first")
    return build(policy, data.get("serial", 0), data.get("lineage", ""))


def build(policy: dict[str, Any], serial: int, lineage: str) -> RelayPolicy:
    relay = policy.get("relay") or {}
    limits = policy.get("limits") or {}
    signing: dict[str, SigningKey] = {}
    unsigned = set()
    return_paths = {}
    for domain, entry in (policy.get("domains") or {}).items():
        if entry.get("return_path"):
            return_paths[entry["return_path"]] = domain
        active = [k for k in entry.get("dkim", []) if k.get("status") == "ACTIVE"]
        if active:
            newest = max(active, key=lambda k: (k["created_at"], k["selector"]))
            signing[domain] = SigningKey(
                domain,
                newest["selector"],
                newest["algorithm"],
                newest["private_key"],
                newest["created_at"],
            )
        elif entry.get("dkim"):
            unsigned.add(domain)
    users = {
        name: (None if body.get("senders") is None else frozenset(body["senders"]))
        for name, body in (policy.get("users") or {}).items()
    }
    credentials = {
        u: Credential(u, c["user"], c["password_hash"])
        for u, c in (policy.get("credentials") or {}).items()
    }
    return RelayPolicy(
        serial=serial,
        lineage=lineage,
        hostname=relay.get("hostname") or "localhost",
        listen=tuple(relay.get("listen") or ["127.0.0.1:587/starttls"]),
        tls=relay.get("tls"),
        data_dir=relay.get("data_dir"),
        limits=Limits(
            **{
                k: limits[k]
                for k in ("recipients_per_day", "messages_per_minute", "max_message_bytes")
                if k in limits
            }
        ),
        senders=frozenset(policy.get("senders") or ()),
        return_paths=return_paths,
        users=users,
        credentials=credentials,
        signing=signing,
        unsigned=frozenset(unsigned),
        suppressions={a.lower(): r for a, r in (policy.get("suppressions") or {}).items()},
        smarthost=relay.get("smarthost"),
        delivery=dict(relay.get("delivery") or {}),
    )
