"""What the plan must show at pull-request time (issue #15), through the real commands:
the safety refusal apply would make, widened sender permissions, DNS drift and how to fix
it, list changes item by item, incompatible options, and `validate --json`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler.schema import load_schema
from tests.states import read_state
from tests.test_dns_live import push_all, verify

STATE = Path("state") / "state.json"
SENDERS = "".join(f"  - u{i:02}@example.com\n" for i in range(41))
FORTY_ONE = f"""\
version: 1
state: {{path: state/state.json}}
relay: {{hostname: smtp.example.net, spf_domain: _spf.example.net, ipv4: [192.0.2.10]}}
domains:
  example.com:
    dkim: [{{selector: s1, algorithm: ed25519}}]
senders:
{SENDERS}"""
REFUSAL = "destroys or replaces 20 of 41 sender resources (49 % > 30%)"


def valid_plan(text: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(text)
    jsonschema.validate(data, load_schema("plan.schema.json"))
    return data


@pytest.fixture
def twenty_deleted(tmp_path: Path, cli) -> Path:
    """41 senders applied, then 20 of them deleted from the config."""
    (tmp_path / "postform.yaml").write_text(FORTY_ONE)
    assert cli(tmp_path, "apply", "--auto-approve").code == 0
    kept = "".join(f"  - u{i:02}@example.com\n" for i in range(20, 41))
    (tmp_path / "postform.yaml").write_text(FORTY_ONE.replace(SENDERS, kept))
    return tmp_path


def test_plan_shows_the_refusal_apply_would_make(twenty_deleted: Path, cli) -> None:
    text = cli(twenty_deleted, "plan")
    assert text.code == 0  # without --detailed-exitcode a plan that runs is a success
    assert "Safety: apply will refuse this plan, which\n  ! " + REFUSAL in text.out
    assert "`postform apply --allow-destructive`" in text.out
    assert text.out.rstrip().endswith(
        "Apply will refuse this plan without --allow-destructive (see Safety above)."
    )
    data = valid_plan(cli(twenty_deleted, "plan", "--json").out)
    assert data["safety"] == {"refused": True, "refusals": [REFUSAL], "allow_destructive": False}
    md = cli(twenty_deleted, "plan", "--markdown").out
    assert md.startswith("### postform plan: Plan: 0 to add, 0 to change, 20 to destroy.")
    assert "**Apply will refuse it.**" in md.splitlines()[0]
    assert f"> - {REFUSAL}" in md and "--allow-destructive" in md


def test_detailed_exitcode_is_1_when_apply_would_refuse_and_2_when_allowed(
    twenty_deleted: Path, cli
) -> None:
    refused = cli(twenty_deleted, "plan", "--detailed-exitcode")
    assert refused.code == 1
    assert "apply would refuse this plan" in refused.err and REFUSAL in refused.err
    assert cli(twenty_deleted, "plan", "--detailed-exitcode", "--markdown").code == 1
    allowed = cli(twenty_deleted, "plan", "--detailed-exitcode", "--allow-destructive")
    assert allowed.code == 2, allowed.err
    assert "Safety: overridden with --allow-destructive (apply needs it too)" in allowed.out
    assert "Apply will refuse" not in allowed.out
    data = valid_plan(cli(twenty_deleted, "plan", "--json", "--allow-destructive").out)
    assert data["safety"] == {"refused": False, "refusals": [REFUSAL], "allow_destructive": True}


def test_apply_refuses_what_plan_showed_and_a_saved_plan_too(twenty_deleted: Path, cli) -> None:
    assert cli(twenty_deleted, "plan", "--out", "plan.json").code == 0
    refused = cli(twenty_deleted, "apply", "plan.json")
    assert refused.code == 1 and REFUSAL in refused.err
    assert "Safety: apply will refuse this plan" in refused.out  # the plan apply showed
    assert read_state(twenty_deleted / STATE).serial == 1
    applied = cli(twenty_deleted, "apply", "--allow-destructive", "plan.json")
    assert applied.code == 0 and "20 destroyed" in applied.out


def test_a_safe_plan_and_a_destroy_plan_are_not_refused(twenty_deleted: Path, cli) -> None:
    (twenty_deleted / "postform.yaml").write_text(FORTY_ONE)
    assert cli(twenty_deleted, "plan", "--detailed-exitcode").code == 0
    data = valid_plan(cli(twenty_deleted, "plan", "--json", "--destroy").out)
    assert data["safety"]["refusals"] == []  # `postform destroy` does not check
    assert cli(twenty_deleted, "plan", "--destroy", "--detailed-exitcode").code == 2


USERS = """\
users:
  app:
    senders: [billing@example.com]
    credentials: [prod]
"""


def widen(project: Path, cli, users: str, senders: str = "") -> tuple[str, list[str]]:
    """Apply BASE_CONFIG, declare `users` (and extra senders): the plan's text, and
    its JSON warnings."""
    assert cli(project, "apply", "--auto-approve").code == 0
    config = project / "postform.yaml"
    text = config.read_text().replace(USERS, users)
    config.write_text(text.replace("senders:\n", "senders:\n" + senders, 1))
    plan = cli(project, "plan")
    assert plan.code == 0, plan.err
    warnings = valid_plan(cli(project, "plan", "--json").out)["warnings"]
    assert isinstance(warnings, list)
    return plan.out, warnings


def test_removing_a_users_senders_list_warns_that_it_may_send_as_everyone(
    project: Path, cli
) -> None:
    out, warnings = widen(project, cli, "users:\n  app:\n    credentials: [prod]\n")
    expected = (
        'user["app"] loses its senders list: its credentials, limited to 1 sender(s) until '
        "now, may send as every approved sender (2 after this plan)"
    )
    assert warnings == [expected]
    assert f"Warning: {expected}" in out
    assert '- senders = ["billing@example.com"] -> null' in out
    md = cli(project, "plan", "--markdown").out
    assert (
        f"> **Warning:** {expected.replace('[', chr(92) + '[').replace(']', chr(92) + ']')}" in md
    )


def test_adding_senders_to_a_list_names_what_the_user_gains(project: Path, cli) -> None:
    users = USERS.replace("[billing@example.com]", "[billing@example.com, noreply@example.com]")
    out, warnings = widen(project, cli, users)
    assert warnings == [
        'user["app"] may send as 1 more sender(s) (its senders list gains them): '
        '"noreply@example.com"'
    ]
    assert '          + "noreply@example.com",' in out  # item by item


def test_new_unrestricted_users_credentials_and_senders_warn(project: Path, cli) -> None:
    users = USERS + "  ops:\n    credentials: [ci]\n"
    _, warnings = widen(project, cli, users)
    assert warnings == [
        'user["ops"] is created without a senders list: its credentials may send as every '
        "approved sender (2 after this plan)"
    ]
    assert cli(project, "apply", "--auto-approve").code == 0
    config = project / "postform.yaml"
    more = users.replace("[ci]", "[ci, ci2]")
    config.write_text(
        config.read_text()
        .replace(users, more)
        .replace("senders:\n", "senders:\n  - ceo@example.com\n", 1)
    )
    warnings = valid_plan(cli(project, "plan", "--json").out)["warnings"]
    assert warnings == [
        'credential["ops/ci2"] is new and may send as every approved sender (3 after this '
        'plan): user["ops"] has no senders list',
        "1 new approved sender(s) may be sent as by the credentials of every user without a "
        'senders list (user["ops"]): "ceo@example.com"',
    ]


def test_narrowing_a_list_does_not_warn(project: Path, cli) -> None:
    _, warnings = widen(project, cli, USERS.replace("[billing@example.com]", "[]"))
    assert warnings == []


def test_drift_exits_2_and_names_the_command_that_fixes_it(dns_project: Path, cli, knot) -> None:
    assert cli(dns_project, "apply", "--auto-approve").code == 0
    push_all(cli, dns_project, knot)
    assert verify(cli, dns_project, knot).code == 0
    assert cli(dns_project, "plan", "--detailed-exitcode").code == 0
    assert cli(dns_project, "refresh", "--nameserver", knot.server, "--detailed-exitcode").code == 0
    knot.update("example.com", delete=[("s1._domainkey.example.com", "TXT")])
    refreshed = cli(dns_project, "refresh", "--nameserver", knot.server, "--detailed-exitcode")
    assert refreshed.code == 2
    assert "`postform dns push --server PRIMARY --zone example.com`" in refreshed.out
    assert cli(dns_project, "refresh", "--nameserver", knot.server).code == 0  # as before
    plan = cli(dns_project, "plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "s1._domainkey.example.com TXT" in plan.out and "No changes." in plan.out
    assert (
        "To fix it, publish the records again (`postform dns push --server PRIMARY --zone "
        "example.com`, or publish what `postform dns records` prints), then run "
        "`postform refresh`" in plan.out
    )
    data = valid_plan(cli(dns_project, "plan", "--json").out)
    assert data["drift_zones"] == ["example.com"] and len(data["drift"]) == 1
    push_all(cli, dns_project, knot)  # the fix the plan names
    assert cli(dns_project, "refresh", "--nameserver", knot.server, "--detailed-exitcode").code == 0
    assert cli(dns_project, "plan", "--detailed-exitcode").code == 0


def test_list_changes_show_item_by_item(project: Path, cli) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    config = project / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "ipv4: [192.0.2.10]", "ipv4: [192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4]"
        )
    )
    out = cli(project, "plan").out
    assert (
        "      ~ ipv4 = [\n"
        '          - "192.0.2.10",\n'
        '          + "192.0.2.1",\n'
        '          + "192.0.2.2",\n'
        '          + "192.0.2.3",\n'
        '          + "192.0.2.4",\n'
        "        ]\n"
    ) in out
    assert "-> [" not in out
    md = cli(project, "plan", "--markdown").out
    assert '| update in place | `relay` | ipv4: `- "192.0.2.10"`, `+ "192.0.2.1"`' in md


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--json", "--markdown"], "--json and --markdown cannot be used together"),
        (["plan", "--destroy", "--replace", "relay"], "--replace cannot be used with --destroy"),
        (
            ["apply", "plan.json", "--replace", "relay"],
            "--replace cannot be used with a saved plan (plan.json)",
        ),
    ],
)
def test_incompatible_options_are_an_error(project: Path, cli, args, message) -> None:
    result = cli(project, *args)
    assert result.code == 1 and message in result.err and result.out == ""
    assert not (project / STATE).exists()


def test_an_option_without_effect_is_a_warning(project: Path, cli) -> None:
    result = cli(project, "plan", "--destroy", "--allow-destructive")
    assert result.code == 0
    assert "Warning: --allow-destructive has no effect with --destroy" in result.err


def test_validate_json(project: Path, cli) -> None:
    ok = cli(project, "validate", "--json")
    assert ok.code == 0 and ok.err == ""
    assert json.loads(ok.out) == {
        "ok": True,
        "file": "postform.yaml",
        "errors": [],
        "warnings": [],
        "counts": {"senders": 2, "domains": 1, "users": 1},
    }
    (project / "warn.yaml").write_text(
        (project / "postform.yaml")
        .read_text()
        .replace("  - noreply@example.com\n", "  - a@b.org\n")
    )
    warned = json.loads(cli(project, "validate", "--json", "-c", "warn.yaml").out)
    assert warned["ok"] is True
    assert warned["warnings"] == [
        {
            "file": "warn.yaml",
            "line": 9,
            "column": 5,
            "path": "senders[0]",
            "message": "domain b.org has no DKIM selector: mail from a@b.org will be sent unsigned",
            "severity": "warning",
        }
    ]
    (project / "bad.yaml").write_text("version: 1\nsenders: [nope]\nbogus: 1\n")
    bad = cli(project, "validate", "--json", "-c", "bad.yaml")
    assert bad.code == 1 and bad.err == ""
    data = json.loads(bad.out)
    assert data["ok"] is False and data["counts"] is None
    assert [(e["line"], e["column"], e["path"]) for e in data["errors"]] == [
        (2, 11, "senders[0]"),
        (3, 1, "bogus"),
    ]
    assert data["errors"][0]["message"] == "'nope' is not a valid email address"
    missing = json.loads(cli(project, "validate", "--json", "-c", "nope.yaml").out)
    assert missing["errors"][0]["message"] == "file not found"


def test_giving_an_unrestricted_user_a_list_does_not_warn(project: Path, cli) -> None:
    unrestricted = "users:\n  app:\n    credentials: [prod]\n"
    widen(project, cli, unrestricted)
    assert cli(project, "apply", "--auto-approve").code == 0
    config = project / "postform.yaml"
    config.write_text(config.read_text().replace(unrestricted, USERS))
    assert valid_plan(cli(project, "plan", "--json").out)["warnings"] == []
