"""`postform suppressions` on the relay's runtime list, and its split from the plan."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from relay.store.sqlite import EmbeddedStore

DATA = Path("state") / "relay"


def test_add_list_remove_export(project: Path, cli) -> None:
    cli(project, "apply", "--auto-approve")
    added = cli(
        project,
        "suppressions",
        "add",
        "Someone@Example.ORG",
        "--reason",
        "complaint",
        "--note",
        "spam report",
    )
    assert added.code == 0 and "Suppressed Someone@example.org (COMPLAINT)" in added.out
    again = cli(project, "suppressions", "add", "Someone@example.org")
    assert "already suppressed" in again.out
    bad = cli(project, "suppressions", "add", "nope")
    assert bad.code == 1 and "not a valid email address" in bad.err
    rows = json.loads(cli(project, "suppressions", "list", "--json").out)
    assert [(r["address"], r["reason"], r["note"]) for r in rows] == [
        ("Someone@example.org", "COMPLAINT", "spam report")
    ]
    exported = list(csv.reader(io.StringIO(cli(project, "suppressions", "export").out)))
    assert exported[0][:2] == ["address", "reason"] and exported[1][:2] == [
        "Someone@example.org",
        "COMPLAINT",
    ]
    missing_reason = cli(project, "suppressions", "remove", "Someone@example.org")
    assert missing_reason.code != 0
    removed = cli(
        project,
        "suppressions",
        "remove",
        "Someone@example.org",
        "--reason",
        "customer asked us to resume",
    )
    assert removed.code == 0 and "was COMPLAINT" in removed.out
    log = (project / "state" / "relay" / "events.jsonl").read_text()
    assert '"event":"unsuppressed"' in log and "customer asked us to resume" in log
    assert json.loads(cli(project, "suppressions", "list", "--json").out) == []


def test_learned_suppressions_are_shown_by_plan_and_never_planned(project: Path, cli) -> None:
    cli(project, "apply", "--auto-approve")
    store = EmbeddedStore(project / DATA)
    store.suppressions.hard_bounce("gone@example.org", "550 5.1.1 No such user", "q1")
    store.close()
    plan = cli(project, "plan", "--detailed-exitcode")
    assert plan.code == 0 and "No changes." in plan.out
    assert "the relay has learned 1 suppression(s) from bounces" in plan.out
    assert json.loads(cli(project, "plan", "--json").out)["runtime"] == {"learned_suppressions": 1}
    cli(project, "apply", "--auto-approve")
    assert EmbeddedStore(project / DATA).suppressions.reason("gone@example.org") == "HARDBOUNCE"
