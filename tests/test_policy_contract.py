"""The relay policy document: one typed definition, versioned, refused when not understood."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.policy import build_policy
from relay.contract.dkim import DkimStatus
from relay.contract.policy import (
    POLICY_VERSION,
    PolicyError,
    PolicyVersionError,
    RelayPolicy,
    SigningKey,
)
from relay.contract.policyfile import read_policy_file, write_policy_file
from relay.contract.suppression import SuppressionReason

RESOURCES = {
    "relay": {
        "type": "relay",
        "name": None,
        "attributes": {
            "hostname": "smtp.example.net",
            "listen": ["127.0.0.1:2525/starttls"],
            "smarthost": {"host": "mx.example.net", "tls": "required"},
            "delivery": {"retry_base": 5},
        },
        "computed": {},
    },
    "limits": {
        "type": "limits",
        "name": None,
        "attributes": {"recipients_per_day": 9, "messages_per_minute": 8},
        "computed": {},
    },
    'domain["example.com"]': {
        "type": "domain",
        "name": "example.com",
        "attributes": {"spf": True, "return_path": "rp.example.com"},
        "computed": {},
    },
    'dkim["example.com/old"]': {
        "type": "dkim",
        "name": "example.com/old",
        "attributes": {"domain": "example.com", "selector": "old", "algorithm": "ed25519"},
        "computed": {
            "private_key": "OLD-PEM",
            "public_key": "x",
            "created_at": "2026-01-01T00:00:00+00:00",
            "status": "ACTIVE",
        },
    },
    'dkim["example.com/new"]': {
        "type": "dkim",
        "name": "example.com/new",
        "attributes": {"domain": "example.com", "selector": "new", "algorithm": "ed25519"},
        "computed": {
            "private_key": "NEW-PEM",
            "public_key": "y",
            "created_at": "2026-06-01T00:00:00+00:00",
            "status": "NEEDS_ATTENTION",
        },
    },
    'sender["noreply@example.com"]': {
        "type": "sender",
        "name": "noreply@example.com",
        "attributes": {"domain": "example.com"},
        "computed": {},
    },
    'user["app"]': {
        "type": "user",
        "name": "app",
        "attributes": {"senders": ["noreply@example.com"]},
        "computed": {},
    },
    'credential["app/prod"]': {
        "type": "credential",
        "name": "app/prod",
        "attributes": {"user": "app"},
        "computed": {"username": "app.prod.1", "password_hash": "scrypt$x", "created_at": "t"},
    },
    'suppression["Bob@Example.org"]': {
        "type": "suppression",
        "name": "Bob@Example.org",
        "attributes": {"reason": "COMPLAINT"},
        "computed": {},
    },
}


def policy() -> RelayPolicy:
    return build_policy(RESOURCES, serial=7, lineage="L")


def test_the_policy_is_typed_and_holds_only_what_a_relay_needs() -> None:
    p = policy()
    assert p.relay.hostname == "smtp.example.net" and p.relay.listen == ("127.0.0.1:2525/starttls",)
    assert p.relay.smarthost is not None and p.relay.smarthost.port == 25
    assert p.relay.delivery.retry_base == 5 and p.relay.delivery.retry_max == 3600
    assert (p.limits.recipients_per_day, p.limits.max_message_bytes) == (9, 2 * 1024 * 1024)
    assert p.users == {"app": frozenset({"noreply@example.com"})}
    assert p.credentials["app.prod.1"].user == "app"
    assert p.suppressions == {"bob@example.org": SuppressionReason.COMPLAINT}
    assert p.return_paths == {"rp.example.com": "example.com"}
    # the newest ACTIVE key signs; a new key waits for its DNS record
    assert p.signing["example.com"].selector == "old"
    assert {k.status for k in p.domains["example.com"].keys} == set(DkimStatus)
    text = json.dumps(p.to_dict())
    assert "public_key" not in text and "spf" not in text
    assert text.count("OLD-PEM") == 1 and text.count("NEW-PEM") == 1


def test_private_keys_and_hashes_stay_out_of_repr() -> None:
    shown = repr(policy())
    assert "PEM" not in shown and "scrypt" not in shown
    assert "PEM" not in repr(SigningKey("d", "s", "ed25519", "SECRET-PEM"))


def test_round_trip_through_the_wire_form_and_the_file(tmp_path: Path) -> None:
    p = policy()
    assert RelayPolicy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    path = tmp_path / "state.policy.json"
    write_policy_file(path, p)
    assert read_policy_file(path) == p
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_newer_version_is_refused_with_a_clear_error() -> None:
    doc = policy().to_dict()
    doc["version"] = POLICY_VERSION + 1
    with pytest.raises(PolicyVersionError, match="newer than this postform reads"):
        RelayPolicy.from_dict(doc)
    doc["version"] = 1
    with pytest.raises(PolicyVersionError, match="older than this postform reads"):
        RelayPolicy.from_dict(doc)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d["domains"]["example.com"]["dkim"][0].pop("private_key"), "'private_key'"),
        (lambda d: d.__setitem__("serial", "seven"), "serial is str"),
        (lambda d: d["limits"].__setitem__("bogus", 1), "bogus"),
        (lambda d: d["suppressions"].__setitem__("a@b", "BORED"), "BORED"),
        (lambda d: d.pop("format"), "not a postform relay policy"),
    ],
)
def test_a_damaged_document_is_a_policy_error_naming_the_damage(damage, message) -> None:
    doc = policy().to_dict()
    damage(doc)
    with pytest.raises(PolicyError, match=message):
        RelayPolicy.from_dict(doc)


def test_a_missing_file_says_to_apply(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="run `postform apply` first"):
        read_policy_file(tmp_path / "nothing.json")
