"""DKIM selectors retire in two phases (issue #15): the pure rule, the relay policy and
the spool count it reads. The whole flow through the CLI is in test_retirement_flow.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reconciler.policy import build_policy
from reconciler.resources import Resource
from reconciler.retirement import RETIRED_AT, Retirement, retire
from relay.spool import Spool, queued_signatures

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def dkim(selector: str, **extra: object) -> dict[str, object]:
    return {
        "type": "dkim",
        "name": f"example.com/{selector}",
        "attributes": {
            "domain": "example.com",
            "selector": selector,
            "algorithm": "ed25519",
            "activation": "immediate",
            **extra,
        },
        "computed": {
            "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
            "public_key": "k",
            "created_at": "2026-11-01T00:00:00+00:00",
            "status": "ACTIVE",
        },
    }


STORED = {'dkim["example.com/old"]': dkim("old"), 'dkim["example.com/new"]': dkim("new")}
KEEP = {
    'dkim["example.com/new"]': Resource(
        "dkim", "example.com/new", dict(STORED['dkim["example.com/new"]']["attributes"])
    )
}


def test_a_selector_left_out_of_the_config_is_retired_not_deleted() -> None:
    desired, notes = retire(KEEP, STORED, Retirement(NOW, WEEK))
    old = desired['dkim["example.com/old"]']
    assert old.attributes[RETIRED_AT] == "2026-11-29T12:00:00+00:00"
    assert old.attributes["selector"] == "old"
    assert 'dkim["example.com/old"] is retired by this apply' in notes[0]
    assert "after 2026-12-06T12:00:00+00:00 (the retention of 7 days)" in notes[0]


def test_a_retired_selector_stays_for_its_retention_then_goes() -> None:
    retired = {**STORED, 'dkim["example.com/old"]': dkim("old", retired_at=NOW.isoformat())}
    during, notes = retire(KEEP, retired, Retirement(NOW + timedelta(days=6), WEEK))
    assert (
        during['dkim["example.com/old"]'].attributes
        == retired['dkim["example.com/old"]']["attributes"]
    )  # unchanged: no change in the plan, only the note
    assert "stay until 2026-12-06T12:00:00+00:00 (retention)" in notes[0]
    after, notes = retire(KEEP, retired, Retirement(NOW + timedelta(days=8), WEEK))
    assert 'dkim["example.com/old"]' not in after and notes == []  # the plan deletes it


def test_a_queued_message_signed_with_it_holds_the_second_phase() -> None:
    retired = {**STORED, 'dkim["example.com/old"]': dkim("old", retired_at=NOW.isoformat())}
    rules = Retirement(NOW + timedelta(days=8), WEEK, queued={"example.com/old": 2})
    desired, notes = retire(KEEP, retired, rules)
    assert 'dkim["example.com/old"]' in desired
    assert "the 2 queued message(s) signed with it have left this relay" in notes[0]


def test_a_retired_selector_no_longer_signs() -> None:
    retired = {**STORED, 'dkim["example.com/old"]': dkim("old", retired_at=NOW.isoformat())}
    domain = {"type": "domain", "name": "example.com", "attributes": {}, "computed": {}}
    policy = build_policy({**retired, 'domain["example.com"]': domain}, 1, "lineage")
    assert [k.selector for k in policy.domains["example.com"].keys] == ["new"]
    assert policy.signing["example.com"].selector == "new"


def test_the_spool_counts_messages_by_the_key_that_signed_them(tmp_path: Path) -> None:
    assert queued_signatures(tmp_path / "nothing") is None
    spool = Spool(tmp_path / "spool")

    async def store() -> None:
        for i, key in enumerate(["example.com/old", "example.com/old", "example.com/new", None]):
            envelope = {"mail_from": "a@example.com", "from": "a@example.com", "dkim": key}
            await spool.store(f"q{i}", envelope, b"Subject: x\r\n\r\nbody\r\n")
        await spool.store("legacy", {"from": "a@Example.com", "dkim": "old"}, b"x")

    asyncio.run(store())
    assert queued_signatures(tmp_path / "spool") == {"example.com/old": 3, "example.com/new": 1}
