"""A published relay policy that does not match the state (damaged, edited, missing) is
found by plan (exit 2 with --detailed-exitcode, not "No changes.") and written again by
apply; the relay refuses a damaged one with an error, never a traceback (issue #11,
attack 8)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.contract.policycodec import decode_policy, encode_policy
from tests.conftest import run_binary


def damage(project: Path, change: Callable[[dict], None]) -> None:  # type: ignore[type-arg]
    path = project / "state" / "state.policy.json"
    document = decode_policy(path.read_bytes())
    change(document)
    path.write_bytes(encode_policy(document))


def no_key(d: dict) -> None:  # type: ignore[type-arg]
    for domain in d["domains"].values():
        for key in domain["dkim"]:
            key.pop("private_key", None)


def extra_sender(d: dict) -> None:  # type: ignore[type-arg]
    d["senders"].append("evil@example.com")


def gone(d: dict) -> None:  # type: ignore[type-arg]
    d.clear()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (no_key, "does not match the state (damaged, edited or out of date)"),
        (extra_sender, "does not match the state (damaged, edited or out of date)"),
        (gone, "is missing or cannot be read"),
    ],
)
def test_plan_finds_a_policy_that_is_not_the_states_and_apply_rewrites_it(
    project: Path,
    cli,
    change: Callable[[dict], None],
    said: str,  # type: ignore[type-arg]
) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0
    assert cli(project, "plan", "--detailed-exitcode").code == 0
    damage(project, change)
    planned = cli(project, "plan", "--detailed-exitcode")
    assert planned.code == 2, planned.out
    assert said in planned.out and "No changes." not in planned.out
    as_json = json.loads(cli(project, "plan", "--json").out)
    assert as_json["policy"] == said
    applied = cli(project, "apply", "--auto-approve")
    assert applied.code == 0 and "Published the relay policy" in applied.out
    assert cli(project, "plan", "--detailed-exitcode").code == 0


def test_the_relay_refuses_a_damaged_policy_with_an_error_not_a_traceback(project: Path) -> None:
    assert run_binary(project, "apply", "--auto-approve").code == 0
    damage(project, no_key)
    served = run_binary(project, "relay", "serve", "--self-signed", "--listen", "127.0.0.1:1")
    assert served.code == 1
    assert "damaged" in served.err and "private_key" in served.err
    assert "Traceback" not in served.err
