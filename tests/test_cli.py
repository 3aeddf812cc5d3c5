"""The postform command through its real entry point (in-process main() and the binary)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import jsonschema
import pytest

from reconciler.schema import load_schema
from tests.conftest import run_binary
from tests.states import read_state

STATE = Path("state") / "state.json"


def test_validate_ok_and_errors(project: Path, cli) -> None:
    ok = cli(project, "validate")
    assert ok.code == 0 and "valid (2 senders, 1 domains, 1 users)" in ok.out
    (project / "bad.yaml").write_text("version: 1\nsenders: [nope]\nbogus: 1\n")
    bad = cli(project, "validate", "-c", "bad.yaml")
    assert bad.code == 1
    assert "bad.yaml:2:11: senders[0]: 'nope' is not a valid email address" in bad.err
    assert "bad.yaml:3:1: bogus: unknown key 'bogus'" in bad.err
    assert "Traceback" not in bad.err + bad.out


def test_plan_apply_plan_cycle(project: Path, cli) -> None:
    first = cli(project, "plan", "--detailed-exitcode")
    assert first.code == 2
    assert "Plan: 9 to add, 0 to change, 0 to destroy." in first.out
    assert not (project / STATE).exists()
    applied = cli(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.err
    assert "Apply complete! Resources: 9 added, 0 changed, 0 destroyed." in applied.out
    assert 'dkim["example.com/s1"]: Creation complete' in applied.out
    again = cli(project, "plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out
    assert stat.S_IMODE((project / STATE).stat().st_mode) == 0o600


def test_apply_asks_for_yes(project: Path, cli) -> None:
    refused = cli(project, "apply", stdin="no\n")
    assert refused.code == 1 and "Apply cancelled" in refused.err
    assert not (project / STATE).exists()
    accepted = cli(project, "apply", stdin="yes\n")
    assert accepted.code == 0 and "Apply complete!" in accepted.out


def test_json_and_markdown_plans(project: Path, cli) -> None:
    data = json.loads(cli(project, "plan", "--json").out)
    jsonschema.validate(data, load_schema("plan.schema.json"))
    assert data["format_version"] == "1.0" and data["summary"] == {
        "add": 9,
        "change": 0,
        "destroy": 0,
    }
    md = cli(project, "plan", "--markdown").out
    assert md.startswith("### postform plan: Plan: 9 to add")


def test_saved_plan_applies_exactly_and_stale_plan_is_refused(project: Path, cli) -> None:
    assert cli(project, "plan", "--out", "p1.json").code == 0
    assert cli(project, "plan", "--out", "p2.json").code == 0
    first = cli(project, "apply", "p1.json")
    assert first.code == 0 and "Apply complete! Resources: 9 added" in first.out
    stale = cli(project, "apply", "p2.json")
    assert stale.code == 1
    assert "saved plan p2.json is stale" in stale.err and "Run `postform plan` again" in stale.err
    assert read_state(project / STATE).serial == 1


def test_plan_file_that_is_not_a_plan(project: Path, cli) -> None:
    (project / "junk.json").write_text('{"format_version": "1.0"}')
    result = cli(project, "apply", "junk.json")
    assert result.code == 1 and "does not match schemas/plan.schema.json" in result.err


def test_credentials_shown_once_or_written_private(project: Path, cli) -> None:
    shown = cli(project, "apply", "--auto-approve")
    password = re.search(r"password: (\S+)", shown.out)[1]
    assert "shown only this once" in shown.out
    for command in (
        ["plan"],
        ["show"],
        ["show", "--json"],
        ["plan", "--json"],
        ["state", "list"],
        ["state", "show", 'credential["app/prod"]'],
    ):
        assert password not in cli(project, *command).out
    rotated = cli(
        project,
        "apply",
        "--auto-approve",
        "--replace",
        'credential["app/prod"]',
        "--credentials-out",
        "creds.json",
    )
    assert rotated.code == 0, rotated.err
    assert "password:" not in rotated.out and "Wrote 1 new SMTP credential(s)" in rotated.out
    creds = project / "creds.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    (row,) = json.loads(creds.read_text())
    assert row["address"] == 'credential["app/prod"]' and row["password"] != password


def test_private_keys_and_hashes_never_reach_output(project: Path, cli) -> None:
    outputs = [cli(project, "apply", "--auto-approve")]
    raw = json.loads((project / STATE).read_text())
    secrets = [
        r["computed"][k]
        for r in raw["resources"].values()
        for k in ("private_key", "password_hash")
        if k in r["computed"]
    ]
    assert len(secrets) == 2
    for command in (
        ["plan"],
        ["plan", "--json"],
        ["plan", "--markdown"],
        ["show"],
        ["show", "--json"],
        ["state", "show", 'dkim["example.com/s1"]'],
        ["plan", "--destroy"],
        ["destroy", "--auto-approve"],
    ):
        outputs.append(cli(project, *command))
    text = "".join(o.out + o.err for o in outputs)
    for secret in secrets:
        assert secret not in text
    assert "PRIVATE KEY" not in text and "scrypt$" not in text


def test_show_and_state_commands(project: Path, cli) -> None:
    assert "nothing has been applied" in cli(project, "show").out
    cli(project, "apply", "--auto-approve")
    listed = cli(project, "state", "list").out.splitlines()
    assert listed[:3] == ["relay", "limits", 'domain["example.com"]']
    assert len(listed) == 9
    one = cli(project, "state", "show", 'dkim["example.com/s1"]')
    assert "private_key = (sensitive value)" in one.out and "public_key  = " in one.out
    data = json.loads(cli(project, "show", "--json").out)
    assert data["serial"] == 1 and data["resources"][3]["sensitive"] == ["private_key"]
    missing = cli(project, "state", "show", 'sender["x@example.com"]')
    assert missing.code == 1 and "no resource" in missing.err


def test_destroy_empties_the_state(project: Path, cli) -> None:
    cli(project, "apply", "--auto-approve")
    result = cli(project, "destroy", "--auto-approve")
    assert result.code == 0 and "0 added, 0 changed, 9 destroyed" in result.out
    assert read_state(project / STATE).resources == {}


def test_removing_everything_needs_allow_destructive(project: Path, cli) -> None:
    senders = "".join(f"  - u{i}@example.com\n" for i in range(20))
    config = project / "postform.yaml"
    config.write_text(config.read_text().replace("senders:\n", "senders:\n" + senders))
    assert cli(project, "apply", "--auto-approve").code == 0
    config.write_text(config.read_text().replace(senders, ""))
    refused = cli(project, "apply", "--auto-approve")
    assert refused.code == 1
    assert "destroys or replaces 20 of 22 sender resources" in refused.err
    assert read_state(project / STATE).serial == 1
    allowed = cli(project, "apply", "--auto-approve", "--allow-destructive")
    assert allowed.code == 0 and "20 destroyed" in allowed.out


def test_bad_config_changes_nothing(project: Path, cli) -> None:
    cli(project, "apply", "--auto-approve")
    before = (project / STATE).read_bytes()
    config = project / "postform.yaml"
    config.write_text(config.read_text() + "senders: []\n")
    result = cli(project, "apply", "--auto-approve")
    assert result.code == 1 and "duplicate key 'senders'" in result.err
    assert (project / STATE).read_bytes() == before


def test_locked_state_fails_fast_and_force_unlock_releases(project: Path, cli) -> None:
    from reconciler.state.filelock import FileLock
    from reconciler.state.local import lock_path

    lock = FileLock(lock_path(project / STATE))
    with lock.hold("apply", 0) as info:
        blocked = cli(project, "apply", "--auto-approve")
        assert blocked.code == 1 and "the state is locked" in blocked.err and info.id in blocked.err
        released = cli(project, "force-unlock", info.id)
        assert released.code == 0 and "still running" in released.out
        assert not lock.path.exists()
        assert cli(project, "apply", "--auto-approve").code == 0
    assert cli(project, "force-unlock", info.id).code == 1


def test_corrupt_state_is_reported_by_the_binary(project: Path) -> None:
    (project / "state").mkdir()
    (project / STATE).write_text('{"format": "postform-state", "serial": 1,')
    result = run_binary(project, "plan")
    assert result.code == 1
    assert "is corrupt" in result.err and "Traceback" not in result.err
    assert (project / STATE).read_text().endswith(",")


def test_binary_quickstart_flow(tmp_path: Path) -> None:
    from tests.conftest import QUICKSTART

    (tmp_path / "postform.yaml").write_text(QUICKSTART.read_text())
    assert run_binary(tmp_path, "validate").code == 0
    applied = run_binary(tmp_path, "apply", "--auto-approve")
    assert applied.code == 0, applied.err
    assert "Plan: 9 to add" in applied.out and "username: billing-app.prod." in applied.out
    again = run_binary(tmp_path, "plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["validate"],
        ["plan"],
        ["apply"],
        ["destroy"],
        ["show"],
        ["state", "list"],
        ["state", "show"],
        ["force-unlock"],
        ["refresh"],
        ["dns", "records"],
        ["dns", "verify"],
        ["dns", "push"],
        ["relay", "serve"],
        ["relay", "deliver"],
        ["fmt"],
        ["import"],
        ["state", "rm"],
        ["state", "mv"],
    ],
)
def test_every_help_renders(command: list[str], tmp_path: Path) -> None:
    result = run_binary(tmp_path, *command, "--help")
    assert result.code == 0, result.err
    assert "Usage:" in result.out and "Traceback" not in result.err


def test_usage_errors_exit_1_not_the_changes_code(project: Path, cli) -> None:
    assert cli(project, "plan", "--detailed-exitcod").code == 1
    assert cli(project, "plan", "--detailed-exitcode").code == 2
    assert cli(project, "apply", "--lock-timeout", "-1").code == 1
