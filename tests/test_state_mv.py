"""`postform state rm` and `state mv` (issue #15): forget resources, rename users and
credentials without rotating a password; both write the state as apply does (lock,
serial + 1, history kept, relay policy republished) and refuse what they cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.contract.passwords import verify_password
from tests.states import read_policy, read_state
from tests.test_encryption import LOCAL, config

STATE = Path("state") / "state.json"


def rename_user_in_yaml(project: Path, old: str, new: str) -> None:
    path = project / "postform.yaml"
    path.write_text(path.read_text().replace(f"  {old}:\n", f"  {new}:\n"))


def test_state_rm_forgets_and_the_next_plan_creates_again(project: Path, cli) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    before = read_state(project / STATE)
    result = cli(project, "state", "rm", 'sender["noreply@example.com"]')
    assert result.code == 0, result.err
    assert 'Removed sender["noreply@example.com"]' in result.out
    after = read_state(project / STATE)
    assert after.serial == before.serial + 1 and after.lineage == before.lineage
    assert 'sender["noreply@example.com"]' not in after.resources
    policy = read_policy(project / STATE)
    assert policy.serial == after.serial and "noreply@example.com" not in policy.senders
    history = cli(project, "state", "history").out
    assert f"serial {before.serial}." in history and f"serial {after.serial}." in history
    plan = cli(project, "plan", "--detailed-exitcode")
    assert plan.code == 2 and '# sender["noreply@example.com"] will be created' in plan.out
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in plan.out


def test_state_rm_of_a_user_takes_its_credentials_and_refuses_unknown_addresses(
    project: Path, cli
) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    state_file = project / STATE
    before = state_file.read_bytes()
    unknown = cli(project, "state", "rm", 'user["app"]', 'user["nobody"]')
    assert unknown.code == 1 and 'no resource user["nobody"]' in unknown.err
    assert "nothing was removed" in unknown.err and state_file.read_bytes() == before
    bad = cli(project, "state", "rm", "user[app]")
    assert bad.code == 1 and "is not a resource address" in bad.err
    removed = cli(project, "state", "rm", 'user["app"]')
    assert removed.code == 0
    assert 'Removed credential["app/prod"]' in removed.out
    assert set(read_state(state_file).resources).isdisjoint(
        {'user["app"]', 'credential["app/prod"]'}
    )
    plan = cli(project, "plan").out
    assert '# user["app"] will be created' in plan and '# credential["app/prod"] will be' in plan


def test_state_mv_of_a_user_keeps_its_credentials_passwords(project: Path, cli) -> None:
    applied = cli(project, "apply", "--auto-approve", "--credentials-out", "creds.json")
    assert applied.code == 0
    password = json.loads((project / "creds.json").read_text())[0]["password"]
    before = read_state(project / STATE)
    old = before.resources['credential["app/prod"]']
    moved = cli(project, "state", "mv", 'user["app"]', 'user["billing"]')
    assert moved.code == 0, moved.err
    assert 'Moved user["app"] to user["billing"]' in moved.out
    assert 'Moved credential["app/prod"] to credential["billing/prod"]' in moved.out
    after = read_state(project / STATE)
    assert after.serial == before.serial + 1
    new = after.resources['credential["billing/prod"]']
    assert new["computed"] == old["computed"]  # the same hash, username and time
    assert new["attributes"] == {"user": "billing"} and new["name"] == "billing/prod"
    assert (
        after.resources['user["billing"]']["attributes"]
        == (before.resources['user["app"]']["attributes"])
    )
    credential = read_policy(project / STATE).credentials[old["computed"]["username"]]
    assert credential.user == "billing" and verify_password(password, credential.password_hash)
    rename_user_in_yaml(project, "app", "billing")
    plan = cli(project, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes." in plan.out, plan.out


def test_state_mv_of_a_credential(project: Path, cli) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    old = read_state(project / STATE).resources['credential["app/prod"]']
    moved = cli(project, "state", "mv", 'credential["app/prod"]', 'credential["app/main"]')
    assert moved.code == 0, moved.err
    assert (
        read_state(project / STATE).resources['credential["app/main"]']["computed"]
        == (old["computed"])
    )
    path = project / "postform.yaml"
    path.write_text(path.read_text().replace("credentials: [prod]", "credentials: [main]"))
    assert cli(project, "plan", "--detailed-exitcode").code == 0


def test_state_mv_refuses_what_it_cannot_do(project: Path, cli) -> None:
    path = project / "postform.yaml"
    path.write_text(path.read_text().replace("  app:\n", "  ops:\n    credentials: [x]\n  app:\n"))
    assert cli(project, "apply", "--auto-approve").code == 0
    state_file = project / STATE
    before = state_file.read_bytes()
    cases = {
        ('user["app"]', 'credential["app/x"]'): "a resource keeps its type",
        ('user["app"]', 'user["ops"]'): 'user["ops"] is already in the state',
        ('credential["app/prod"]', 'credential["ops/x"]'): "is already in the state",
        ('credential["app/prod"]', 'credential["nobody/prod"]'): 'user["nobody"] is not in',
        ('user["ghost"]', 'user["spirit"]'): 'no resource user["ghost"]',
        ('domain["example.com"]', 'domain["example.org"]'): "renames users and credentials",
        ('user["app"]', 'user["bad name"]'): "is not a valid name",
        ('credential["app/prod"]', 'credential["prod"]'): "is not a valid name",
    }
    for (source, target), message in cases.items():
        result = cli(project, "state", "mv", source, target)
        assert result.code == 1, (source, target)
        assert message in result.err, (source, target, result.err)
        assert "Traceback" not in result.err
        assert state_file.read_bytes() == before


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("POSTFORM_STATE_PASSPHRASE", "correct horse battery staple")
    return "correct horse battery staple"


def test_state_mv_reseals_an_encrypted_hash_at_its_new_address(
    tmp_path: Path, passphrase: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relay.contract.sealing import Sealer, credential_context

    folder = config(tmp_path, LOCAL)
    assert cli(folder, "apply", "--auto-approve").code == 0

    def opened(user: str) -> str:
        document = json.loads((folder / STATE).read_text())
        opener = Sealer.from_header(document["sealing"], passphrase.encode(), "the state")
        sealed = document["resources"][f'credential["{user}/prod"]']["computed"]
        return opener.open(sealed["password_hash"], credential_context(user, "prod"))

    hashed = opened("app")
    monkeypatch.delenv("POSTFORM_STATE_PASSPHRASE")
    refused = cli(folder, "state", "mv", 'user["app"]', 'user["billing"]')
    assert refused.code == 1 and "needs the passphrase" in refused.err
    monkeypatch.setenv("POSTFORM_STATE_PASSPHRASE", passphrase)
    assert cli(folder, "state", "mv", 'user["app"]', 'user["billing"]').code == 0
    assert opened("billing") == hashed
    rename_user_in_yaml(folder, "app", "billing")
    assert cli(folder, "plan", "--detailed-exitcode").code == 0
