from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from reconciler import apply as apply_module
from reconciler.apply import apply_plan
from reconciler.config import load_config
from reconciler.errors import ApplyFailedError
from reconciler.manager import Manager
from reconciler.planner import make_plan
from relay.contract.dkim import DkimStatus
from relay.contract.passwords import verify_password
from relay.contract.policyfile import read_policy_file
from tests.states import read_state

CONFIG = """\
version: 1
domains:
  example.com:
    dkim:
      - {selector: ed, algorithm: ed25519}
      - {selector: rsa, algorithm: rsa-2048}
  other.example:
    dkim: [{selector: s1, algorithm: ed25519}]
senders: [a@example.com, b@other.example]
users:
  app: {credentials: [prod, staging]}
"""


def apply_config(tmp_path: Path, text: str = CONFIG):
    (tmp_path / "postform.yaml").write_text(text)
    manager = Manager.load(tmp_path / "postform.yaml")
    state = manager.state()
    plan = make_plan(manager.config, state)
    lines: list[str] = []
    new_state, issued = apply_plan(plan, state, manager.write, lines.append)
    return manager.config, new_state, issued, lines


def test_dkim_keys_are_real_key_pairs(tmp_path: Path) -> None:
    _, state, _, _ = apply_config(tmp_path)
    ed = state.resources['dkim["example.com/ed"]']["computed"]
    key = serialization.load_pem_private_key(ed["private_key"].encode(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert base64.b64decode(ed["public_key"]) == raw
    rs = state.resources['dkim["example.com/rsa"]']["computed"]
    key = serialization.load_pem_private_key(rs["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert base64.b64decode(rs["public_key"]) == spki


def test_credentials_are_stored_only_as_hashes(tmp_path: Path) -> None:
    cfg, state, issued, lines = apply_config(tmp_path)
    assert {c.name for c in issued} == {"prod", "staging"}
    raw = cfg.state_path.read_text()
    for cred in issued:
        stored = state.resources[cred.address]["computed"]
        assert stored["username"] == cred.username
        assert verify_password(cred.password, stored["password_hash"])
        assert not verify_password(cred.password + "x", stored["password_hash"])
        assert cred.password not in raw
    assert issued[0].username != issued[1].username
    assert 'credential["app/prod"]: Creation complete after 0s' in lines


def test_policy_is_published_for_the_relay(tmp_path: Path) -> None:
    _, state, issued, _ = apply_config(tmp_path)
    path = tmp_path / ".postform" / "state.policy.json"
    policy = read_policy_file(path)
    assert (policy.serial, policy.lineage) == (state.serial, state.lineage)
    assert policy.senders == {"a@example.com", "b@other.example"}
    keys = policy.domains["example.com"].keys
    assert sorted(k.selector for k in keys) == ["ed", "rsa"]
    assert {k.status for k in keys} == {DkimStatus.NEEDS_ATTENTION}
    assert policy.signing == {} and policy.unsigned == {"example.com", "other.example"}
    assert set(policy.credentials) == {c.username for c in issued}
    assert policy.limits.max_message_bytes == 2 * 1024 * 1024
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert b"\n " not in path.read_bytes()  # compact: no indentation


def test_each_private_key_is_stored_once_in_the_state_and_once_in_the_policy(
    tmp_path: Path,
) -> None:
    _, state, _, _ = apply_config(tmp_path)
    state_text = (tmp_path / ".postform" / "state.json").read_text()
    policy_text = (tmp_path / ".postform" / "state.policy.json").read_text()
    pems = [r["computed"]["private_key"] for r in state.resources.values() if r["type"] == "dkim"]
    assert len(pems) == 3
    for pem in pems:
        escaped = json.dumps(pem)[1:-1]
        assert state_text.count(escaped) == 1
        assert policy_text.count(escaped) == 1


def test_apply_then_plan_is_empty(tmp_path: Path) -> None:
    cfg, _, _, _ = apply_config(tmp_path)
    assert make_plan(cfg, read_state(cfg.state_path)).empty


def test_failure_part_way_records_exactly_what_was_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = apply_module.generate_dkim_key
    calls = {"n": 0}

    def flaky(algorithm: str) -> tuple[str, str]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("entropy source unavailable")
        return real(algorithm)

    monkeypatch.setattr(apply_module, "generate_dkim_key", flaky)
    with pytest.raises(ApplyFailedError) as info:
        apply_config(tmp_path)
    assert "entropy source unavailable" in str(info.value)
    assert "records the 4 change(s) applied before it" in str(info.value)
    state = read_state(tmp_path / ".postform" / "state.json")
    assert sorted(state.resources) == [
        'dkim["example.com/ed"]',
        'domain["example.com"]',
        'domain["other.example"]',
        "limits",
    ]
    monkeypatch.setattr(apply_module, "generate_dkim_key", real)
    cfg = load_config(tmp_path / "postform.yaml")
    remaining = make_plan(cfg, state)
    assert 'dkim["example.com/ed"]' not in {c.address for c in remaining.changes}
    assert len(remaining.changes) == 7


def test_interrupt_part_way_is_saved_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(algorithm: str) -> tuple[str, str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(apply_module, "generate_dkim_key", interrupted)
    with pytest.raises(ApplyFailedError, match="KeyboardInterrupt"):
        apply_config(tmp_path)
    assert read_state(tmp_path / ".postform" / "state.json").serial == 1
