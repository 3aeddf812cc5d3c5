"""The applied relay policy: what `postform relay serve` enforces.

Built from the stored resources at every state write, so the relay reads one
self-contained JSON object and never the YAML or the plan engine.
"""

from __future__ import annotations

from typing import Any

from reconciler.rules import LIMIT_DEFAULTS

POLICY_VERSION = 1


def build_policy(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "version": POLICY_VERSION,
        "relay": {},
        "limits": dict(LIMIT_DEFAULTS),
        "domains": {},
        "senders": [],
        "users": {},
        "credentials": {},
        "suppressions": {},
    }
    for res in resources.values():
        _ADD[res["type"]](policy, res)
    policy["senders"].sort()
    for domain in policy["domains"].values():
        domain["dkim"].sort(key=lambda k: (k["created_at"], k["selector"]))
    return policy


def _domain(policy: dict[str, Any], domain: str) -> dict[str, Any]:
    return policy["domains"].setdefault(domain, {"spf": True, "dmarc": None, "dkim": []})


def _add_domain(policy: dict[str, Any], res: dict[str, Any]) -> None:
    entry = _domain(policy, res["name"])
    entry["spf"] = res["attributes"].get("spf", True)
    entry["dmarc"] = res["attributes"].get("dmarc")
    entry["return_path"] = res["attributes"].get("return_path")


def _add_dkim(policy: dict[str, Any], res: dict[str, Any]) -> None:
    attrs, computed = res["attributes"], res["computed"]
    _domain(policy, attrs["domain"])["dkim"].append(
        {
            "selector": attrs["selector"],
            "algorithm": attrs["algorithm"],
            "private_key": computed["private_key"],
            "public_key": computed["public_key"],
            "created_at": computed["created_at"],
            "status": computed.get("status", "NEEDS_ATTENTION"),
        }
    )


def _add_credential(policy: dict[str, Any], res: dict[str, Any]) -> None:
    computed = res["computed"]
    policy["credentials"][computed["username"]] = {
        "user": res["attributes"]["user"],
        "name": res["name"].split("/", 1)[1],
        "password_hash": computed["password_hash"],
    }


_ADD = {
    "relay": lambda p, r: p.__setitem__("relay", dict(r["attributes"])),
    "limits": lambda p, r: p["limits"].update(r["attributes"]),
    "domain": _add_domain,
    "dkim": _add_dkim,
    "sender": lambda p, r: p["senders"].append(r["name"]),
    "user": lambda p, r: p["users"].__setitem__(
        r["name"], {"senders": r["attributes"].get("senders")}
    ),
    "credential": _add_credential,
    "suppression": lambda p, r: p["suppressions"].__setitem__(
        r["name"], r["attributes"].get("reason", "MANUAL")
    ),
}
