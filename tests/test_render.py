"""Golden files per action for the text and JSON plan, and Markdown checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler.diff import diff
from reconciler.plan import Plan
from reconciler.render.jsonplan import plan_from_json, render_json
from reconciler.render.markdown import MAX_ROWS, render_markdown
from reconciler.render.text import render_text
from reconciler.resources import Resource
from tests.conftest import stored

GOLDEN = Path(__file__).parent / "golden"
DKIM = Resource(
    "dkim", "example.com/s1", {"domain": "example.com", "selector": "s1", "algorithm": "rsa-2048"}
)
DOMAIN = Resource(
    "domain",
    "example.com",
    {"spf": True, "dmarc": {"policy": "none", "rua": ["mailto:d@example.com"]}},
)
SECRET = "-----BEGIN PRIVATE KEY-----SECRETKEYMATERIAL"


def dkim_stored() -> dict[str, object]:
    return stored(DKIM, public_key="MIIBIjANPUBLIC", private_key=SECRET, created_at="2026-11-01")


def plans() -> dict[str, Plan]:
    ed = Resource("dkim", DKIM.name, {**DKIM.attributes, "algorithm": "ed25519"})
    quarantine = Resource(
        "domain",
        DOMAIN.name,
        {"spf": True, "dmarc": {"policy": "quarantine", "rua": ["mailto:d@example.com"]}},
    )
    return {
        "create": diff({DOMAIN.address: DOMAIN, DKIM.address: DKIM}, {}),
        "update": diff(
            {quarantine.address: quarantine},
            {DOMAIN.address: stored(DOMAIN)},
            lineage="L",
            serial=3,
        ),
        "replace": diff({ed.address: ed}, {DKIM.address: dkim_stored()}, lineage="L", serial=4),
        "delete": diff({}, {DKIM.address: dkim_stored()}, lineage="L", serial=5),
        "noop": diff(
            {DOMAIN.address: DOMAIN}, {DOMAIN.address: stored(DOMAIN)}, lineage="L", serial=6
        ),
    }


def json_without_time(plan: Plan) -> dict[str, object]:
    data = json.loads(render_json(plan))
    data.pop("created_at")
    data.pop("postform_version")
    return data


@pytest.mark.parametrize("name", ["create", "update", "replace", "delete", "noop"])
def test_text_and_json_match_golden_files(name: str) -> None:
    plan = plans()[name]
    text, data = render_text(plan), json_without_time(plan)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        (GOLDEN / f"{name}.txt").write_text(text)
        (GOLDEN / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    assert text == (GOLDEN / f"{name}.txt").read_text()
    assert data == json.loads((GOLDEN / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["create", "update", "replace", "delete", "noop"])
def test_no_rendering_leaks_the_private_key(name: str) -> None:
    plan = plans()[name]
    for rendered in (render_text(plan), render_json(plan), render_markdown(plan)):
        assert "SECRETKEYMATERIAL" not in rendered


@pytest.mark.parametrize("name", ["create", "update", "replace", "delete", "noop"])
def test_json_plan_round_trips(name: str) -> None:
    plan = plans()[name]
    again = plan_from_json(render_json(plan), "plan.json")
    assert again.changes == plan.changes
    assert (again.lineage, again.serial) == (plan.lineage, plan.serial)


def test_markdown_lists_changes_and_folds_the_text_plan() -> None:
    md = render_markdown(plans()["replace"])
    assert md.startswith("### postform plan: Plan: 1 to add, 0 to change, 1 to destroy.")
    assert '| **replace** | `dkim["example.com/s1"]` | forces replacement: algorithm |' in md
    assert "<details><summary>Full plan</summary>" in md and "```diff" in md


def test_markdown_table_is_bounded_for_huge_plans() -> None:
    senders = {
        f'sender["u{i}@example.com"]': Resource(
            "sender", f"u{i}@example.com", {"domain": "example.com"}
        )
        for i in range(MAX_ROWS + 50)
    }
    md = render_markdown(diff(senders, {}))
    assert md.count("| create |") == MAX_ROWS
    assert "… and 50 more" in md
    assert len(md) < 65_536


def test_markdown_caps_warnings_and_shows_drift() -> None:
    import dataclasses

    plan = dataclasses.replace(
        plans()["noop"],
        warnings=tuple(f"w{i}" for i in range(400)),
        drift=("_dmarc.example.com TXT was verified but is missing",),
    )
    md = render_markdown(plan)
    assert md.count("> **Warning:**") == 20 and "… and 380 more warnings" in md
    assert "**Drift**" in md and "_dmarc.example.com TXT was verified" in md
