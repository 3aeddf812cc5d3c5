"""The command line's surface (issue #15): --version, -h everywhere, shell completion,
and help that names values by what they are, not by Python types."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from reconciler import __version__
from tests.conftest import postform_binary, run_binary


def test_version(tmp_path: Path, cli) -> None:
    result = run_binary(tmp_path, "--version")
    assert result.code == 0 and result.out == f"postform {__version__}\n"
    assert cli(tmp_path, "--version").code == 0


def test_h_is_help_at_every_level(tmp_path: Path, cli) -> None:
    for command in ([], ["plan"], ["state", "list"], ["relay", "serve"], ["fmt"]):
        short, long = cli(tmp_path, *command, "-h"), cli(tmp_path, *command, "--help")
        assert short.code == long.code == 0, command
        assert short.out == long.out and short.out.startswith("Usage: postform"), command
        assert "-h, --help" in short.out


def completion(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [postform_binary(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_the_completion_script_is_printed_for_each_shell() -> None:
    for shell, marker in (
        ("bash", "complete -o default -F _postform_completion postform"),
        ("zsh", "#compdef postform"),
        ("fish", "complete --command postform"),
    ):
        done = completion(
            {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}, "--show-completion", shell
        )
        assert done.returncode == 0, done.stderr
        assert marker in done.stdout, shell


def test_completion_completes_commands_and_lazy_subcommands() -> None:
    done = completion(
        {"_POSTFORM_COMPLETE": "complete_bash", "COMP_WORDS": "postform pl", "COMP_CWORD": "1"}
    )
    assert done.returncode == 0 and done.stdout.split() == ["plan"]
    done = completion(
        {"_POSTFORM_COMPLETE": "complete_bash", "COMP_WORDS": "postform relay s", "COMP_CWORD": "2"}
    )
    assert set(done.stdout.split()) >= {"serve", "status"}
    done = completion(
        {"_POSTFORM_COMPLETE": "complete_bash", "COMP_WORDS": "postform f", "COMP_CWORD": "1"}
    )
    assert set(done.stdout.split()) >= {"fmt", "force-unlock"}


def commands(cli, folder: Path, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group, found from the help itself."""
    found = [prefix]
    text = cli(folder, *prefix, "--help").out
    if "Commands:" in text:
        for line in text.split("Commands:", 1)[1].splitlines():
            match = re.match(r"  (\S+)", line)
            if match:
                found += commands(cli, folder, (*prefix, match.group(1)))
    return found


def test_no_help_shows_a_python_type(tmp_path: Path, cli) -> None:
    every = commands(cli, tmp_path)
    assert ("relay", "serve") in every and ("fmt",) in every and ("state", "show") in every
    for command in every:
        result = cli(tmp_path, *command, "--help")
        assert result.code == 0, command
        for bad in ("<list[", "range>", "<str>", "<path>", "<int>", "<float>"):
            assert bad not in result.out, (command, bad, result.out)
        assert not re.search(r"<[a-z][a-z _\[\]|]*>", result.out), (command, result.out)


def test_completion_is_offered_by_the_root_only(tmp_path: Path, cli) -> None:
    assert "--install-completion" in cli(tmp_path, "--help").out
    for command in (["fmt"], ["refresh"], ["relay"], ["dns"], ["relay", "serve"]):
        assert "completion" not in cli(tmp_path, *command, "--help").out, command


def test_values_are_named_by_what_they_are(tmp_path: Path, cli) -> None:
    apply_help = cli(tmp_path, "apply", "--help").out
    for shown in ("--config FILE", "--lock-timeout SECONDS", "--replace ADDRESS", "PLAN_FILE"):
        assert shown in apply_help
    serve = cli(tmp_path, "relay", "serve", "--help").out
    assert "--listen HOST:PORT[/MODE]" in serve and "--workers N" in serve


@pytest.mark.parametrize("command", [["validate"], ["fmt", "--check"]])
def test_the_start_up_stays_light(tmp_path: Path, command: list[str]) -> None:
    """Completion is on, yet validate and fmt load neither the relay nor the DNS tooling."""
    from tests.test_architecture import loaded_by

    (tmp_path / "postform.yaml").write_text("version: 1\n")
    modules = loaded_by(*command, cwd=tmp_path)
    heavy = {"aiosmtpd", "aiosmtplib", "prometheus_client", "dns", "relay.server", "relay.cli"}
    assert {m for m in modules if m.split(".")[0] in heavy or m in heavy} == set()
    # a file already formatted is checked without ruamel.yaml (slow to import and to run)
    assert "ruamel" not in {m.split(".")[0] for m in modules}
