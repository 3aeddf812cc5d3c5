"""A config split over several files (issue #15): `include:` of files, folders and
patterns, merged, with every error still located in the file it is in."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.cli.site import resolve_site
from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.statesection import state_section
from tests.conftest import BASE_CONFIG

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

ROOT = """\
version: 1
include: [teams/, shared/domains.yaml]
state: {path: state/state.json}
relay: {hostname: smtp.example.net, spf_domain: _spf.example.net, ipv4: [192.0.2.10]}
suppressions:
  - {address: blocked@example.org, reason: manual}
"""
DOMAINS = """\
domains:
  example.com:
    dkim: [{selector: s1, algorithm: ed25519}]
    dmarc: {policy: none, rua: ["mailto:dmarc@example.com"]}
"""
TEAM_A = """\
# team a
senders:
  - noreply@example.com
"""
TEAM_B = """\
senders:
  - billing@example.com
users:
  app:
    senders: [billing@example.com]
    credentials: [prod]
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder / "postform.yaml"


@pytest.fixture
def split(tmp_path: Path) -> Path:
    """BASE_CONFIG split over a root, a folder of two team files and a shared file."""
    return write(
        tmp_path,
        {
            "postform.yaml": ROOT,
            "shared/domains.yaml": DOMAINS,
            "teams/a.yaml": TEAM_A,
            "teams/b.yaml": TEAM_B,
        },
    )


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(r) for r in info.value.reasons]


def test_a_split_config_loads_like_the_same_config_in_one_file(split: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole" / "postform.yaml"
    whole.parent.mkdir()
    whole.write_text(BASE_CONFIG)
    a, b = load_config(split), load_config(whole)
    for field in ("relay", "limits", "domains", "senders", "users", "suppressions"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.state.path == split.parent / "state" / "state.json"


def test_the_plan_of_a_split_config_equals_the_plan_of_one_file(
    split: Path, project: Path, cli
) -> None:
    together = cli(project, "plan", "--json")
    apart = cli(split.parent, "plan", "--json")
    assert together.code == apart.code == 0, apart.err
    assert json.loads(apart.out)["resource_changes"] == json.loads(together.out)["resource_changes"]
    assert cli(split.parent, "plan").out == cli(project, "plan").out
    assert "valid (2 senders, 1 domains, 1 users)" in cli(split.parent, "validate").out


def test_apply_of_a_split_config_then_plans_no_changes(split: Path, cli) -> None:
    applied = cli(split.parent, "apply", "--auto-approve")
    assert applied.code == 0, applied.err
    again = cli(split.parent, "plan", "--detailed-exitcode")
    assert again.code == 0 and "No changes." in again.out


def test_a_folder_includes_its_yaml_files_in_name_order_and_a_pattern_its_matches(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path,
        {
            "postform.yaml": "version: 1\ninclude: [teams/, 'more/*.yaml']\n",
            "teams/b.yaml": "senders: [b@example.com]\n",
            "teams/a.yml": "senders: [a@example.com]\n",
            "teams/notes.txt": "not yaml\n",
            "teams/.hidden.yaml": "senders: [hidden@example.com]\n",
            "more/z.yaml": "senders: [z@example.com]\n",
            "more/c.yaml": "senders: [c@example.com]\n",
        },
    )
    cfg = load_config(root)
    assert list(cfg.senders) == ["a@example.com", "b@example.com", "c@example.com", "z@example.com"]


def test_nested_includes_are_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "postform.yaml": "version: 1\ninclude: teams/all.yaml\n",
            "teams/all.yaml": "include: [a/one.yaml]\nsenders: [all@example.com]\n",
            "teams/a/one.yaml": "senders: [one@example.com]\n",
        },
    )
    assert list(load_config(root).senders) == ["all@example.com", "one@example.com"]


def test_errors_are_located_in_the_included_file(split: Path) -> None:
    (split.parent / "teams" / "b.yaml").write_text(
        "senders:\n"
        "  - billing@example.com\n"
        "  - {address: not-an-address, descripton: typo}\n"
        "users:\n"
        "  app:\n"
        "    senders: [billing@example.com]\n"
        "    credentials: [prod]\n"
    )
    errors = errors_of(split)
    assert errors == [
        f"{split.parent}/teams/b.yaml:3:15: senders[1].address: 'not-an-address' is not a "
        "valid email address",
        f"{split.parent}/teams/b.yaml:3:31: senders[1].descripton: unknown key 'descripton' "
        "(expected one of: address, description)",
    ]


def test_reasons_name_included_files_relative_to_how_the_root_was_named(
    split: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (split.parent / "teams" / "a.yaml").write_text("senders:\n  - nope\n")
    monkeypatch.chdir(split.parent)
    assert errors_of(Path("postform.yaml")) == [
        "teams/a.yaml:2:5: senders[0]: 'nope' is not a valid email address"
    ]


def test_a_duplicate_sender_across_files_names_both_places(split: Path) -> None:
    (split.parent / "teams" / "b.yaml").write_text(TEAM_B + "  - NoReply@EXAMPLE.com\n")
    (split.parent / "teams" / "b.yaml").write_text(
        "senders:\n  - billing@example.com\n  - noreply@Example.com\n"
    )
    [error] = errors_of(split)
    where = split.parent / "teams"
    assert error == (
        f"{where}/b.yaml:3:5: senders[1]: duplicate sender 'noreply@Example.com' (same as "
        f"senders[0] at {where}/a.yaml:3:5; domains compare case-insensitively)"
    )


def test_a_key_declared_in_two_files_is_an_error_naming_both(split: Path) -> None:
    (split.parent / "teams" / "a.yaml").write_text(
        TEAM_A + "users:\n  app: {credentials: [other]}\n"
    )
    (split.parent / "shared" / "domains.yaml").write_text(
        DOMAINS + "relay:\n  hostname: other.example.net\n"
    )
    errors = errors_of(split)
    teams, shared = split.parent / "teams", split.parent / "shared"
    assert errors == [
        f"{teams}/b.yaml:4:3: users.app: duplicate key 'app' (first defined at {teams}/a.yaml:5:3)",
        f"{shared}/domains.yaml:6:3: relay.hostname: duplicate key 'hostname' "
        f"(first defined at {split}:4:9)",
    ]


def test_sections_of_different_kinds_and_different_versions_are_refused(split: Path) -> None:
    (split.parent / "teams" / "a.yaml").write_text("version: 2\nsenders: {a: b}\n")
    errors = errors_of(split)
    assert any("a.yaml:1:1: version: version is 1 in" in e for e in errors), errors
    assert any(
        e.startswith(f"{split.parent}/teams/b.yaml:1:1: senders: senders is a mapping in ")
        and "a.yaml:2:10 and a list here" in e
        for e in errors
    ), errors


def test_version_may_repeat_in_an_included_file(split: Path) -> None:
    (split.parent / "teams" / "a.yaml").write_text("version: 1\n" + TEAM_A)
    assert len(load_config(split).senders) == 2


def test_an_include_cycle_is_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "postform.yaml": "version: 1\ninclude: [a.yaml]\n",
            "a.yaml": "include: [b.yaml]\n",
            "b.yaml": "include: [postform.yaml]\n",
        },
    )
    [error] = errors_of(root)
    assert error.startswith(f"{tmp_path}/b.yaml:1:11: include[0]: include cycle: ")
    assert error.endswith(
        "postform.yaml -> a.yaml -> b.yaml -> postform.yaml".replace("a.yaml", f"{tmp_path}/a.yaml")
        .replace("b.yaml", f"{tmp_path}/b.yaml")
        .replace("postform.yaml", f"{tmp_path}/postform.yaml")
    )


def test_a_file_included_twice_and_entries_that_find_nothing_are_errors(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "postform.yaml": (
                "version: 1\ninclude: [a.yaml, ./a.yaml, gone.yaml, 'x/*.yaml', empty/]\n"
            ),
            "a.yaml": "senders: [a@example.com]\n",
            "empty/README": "nothing\n",
        },
    )
    messages = [e.split(": ", 2)[2] for e in errors_of(root)]
    assert messages[0].startswith(f"{tmp_path}/a.yaml is included twice (also by {root}:2:11)")
    assert "'gone.yaml': no such file or folder" in messages[1]
    assert "'x/*.yaml': the pattern matches no file" in messages[2]
    assert "'empty/': the folder holds no .yaml or .yml file" in messages[3]
    assert all("would drop what it declares" in m for m in messages[1:])


def test_state_stays_in_the_root_file(split: Path) -> None:
    (split.parent / "teams" / "a.yaml").write_text(TEAM_A + "state: {path: elsewhere.json}\n")
    [error] = errors_of(split)
    assert error.startswith(f"{split.parent}/teams/a.yaml:4:1: state: belongs in the root config")


def test_the_relay_commands_read_the_root_files_state_section(split: Path) -> None:
    assert state_section(split) == {"path": "state/state.json", "backend": "local"}
    assert resolve_site(split).default_data_dir == split.parent / "state" / "relay"


def test_wrong_include_values_and_broken_included_files_are_reported(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "postform.yaml": "version: 1\ninclude: [5, ok.yaml, broken.yaml]\n",
            "ok.yaml": "senders: [nope]\n",
            "broken.yaml": "senders: [a@example.com\n",
        },
    )
    errors = errors_of(root)
    assert errors[0].startswith(f"{root}:2:11: include[0]: expected a file, a folder")
    assert errors[1].startswith(f"{tmp_path}/ok.yaml:1:11: senders[0]: 'nope' is not a valid")
    assert errors[2].startswith(f"{tmp_path}/broken.yaml:2:1: : invalid YAML") or errors[
        2
    ].startswith(f"{tmp_path}/broken.yaml:2:1: invalid YAML")


def test_an_included_file_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {"postform.yaml": "version: 1\ninclude: list.yaml\n", "list.yaml": "- a@example.com\n"},
    )
    [error] = errors_of(root)
    assert error == (
        f"{tmp_path}/list.yaml:1:1: an included file holds top-level sections (a mapping)"
    )


def test_an_empty_included_file_is_fine(split: Path) -> None:
    (split.parent / "teams" / "c.yaml").write_text("# nothing yet\n")
    assert len(load_config(split).senders) == 2


def test_the_gitops_example_is_split_by_team_and_staging_uses_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gitops = EXAMPLES / "gitops"
    production = load_config(gitops / "postform.yaml")
    assert len(list((gitops / "teams").glob("*.yaml"))) >= 3
    assert "billing-service" in production.users and len(production.senders) == 7
    monkeypatch.setenv("POSTFORM_STAGING_HOSTNAME", "smtp.staging.example.com")
    monkeypatch.setenv("POSTFORM_STAGING_IPV4", "203.0.113.7")
    staging = load_config(gitops / "staging.yaml")
    assert staging.relay is not None and staging.relay["hostname"] == "smtp.staging.example.com"
    assert staging.senders == production.senders and staging.users == production.users
    monkeypatch.delenv("POSTFORM_STAGING_IPV4")
    assert any("POSTFORM_STAGING_IPV4 is not set" in e for e in errors_of(gitops / "staging.yaml"))


def test_a_config_without_include_is_the_root_document_itself(project: Path) -> None:
    from reconciler.includes import load_config_document

    doc = load_config_document(project / "postform.yaml")
    assert doc.route is None and "files" not in doc.memo
    assert os.fspath(doc.file) == str(project / "postform.yaml")


def test_locate_on_the_merged_document_answers_in_the_file_that_holds_the_path(
    split: Path,
) -> None:
    from reconciler.includes import load_config_document

    doc = load_config_document(split)
    assert doc.locate(("senders", 1)) == (2, 5)  # teams/b.yaml's first sender
    assert doc.reason(("senders", 1), "x").file == f"{split.parent}/teams/b.yaml"
    assert doc.locate(("relay", "hostname")) == (4, 19)  # in the root file
