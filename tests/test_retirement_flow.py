"""A DKIM selector removed from the config, through the real commands (issue #15): the
first apply retires it (no longer signs, record kept), the second phase waits for the
retention and the local queue, then removes record and key. The clock is faked."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import reconciler.retirement as retirement
from relay.spool import Spool
from tests.states import read_policy

CONFIG = """\
version: 1
state: {path: state/state.json}
dns: {output_dir: dns-out, ttl: 300}
relay:
  hostname: smtp.example.net
  spf_domain: _spf.example.net
  ipv4: [192.0.2.10]
  data_dir: relay-data
domains:
  example.com:
    dkim:
      - {selector: old, algorithm: ed25519, activation: immediate}
      - {selector: new, algorithm: ed25519, activation: immediate}
senders: [noreply@example.com]
"""
START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "postform.yaml").write_text(CONFIG)
    monkeypatch.setattr(retirement, "clock", lambda: START)
    assert cli(folder, "apply", "--auto-approve").code == 0
    config = folder / "postform.yaml"
    config.write_text(config.read_text().replace(RETIRED_LINE, ""))
    return folder


RETIRED_LINE = "      - {selector: old, algorithm: ed25519, activation: immediate}\n"


def later(monkeypatch: pytest.MonkeyPatch, days: float) -> None:
    monkeypatch.setattr(retirement, "clock", lambda: START + timedelta(days=days))


def dkim_records(project: Path) -> set[str]:
    rows = json.loads((project / "dns-out" / "records.json").read_text())["records"]
    return {r["name"] for r in rows if r["purpose"] == "dkim"}


def test_removing_a_selector_retires_it_then_removes_it_after_the_retention(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = cli(project, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.out + plan.err
    assert 'dkim["example.com/old"] will be updated in place' in plan.out
    assert 'dkim["example.com/old"] is retired by this apply' in plan.out
    assert "will be destroyed" not in plan.out
    assert cli(project, "apply", "--auto-approve").code == 0
    policy = read_policy(project / "state" / "state.json")
    assert [k.selector for k in policy.domains["example.com"].keys] == ["new"]  # stops signing
    assert "old._domainkey.example.com" in dkim_records(project)  # record still published
    later(monkeypatch, 6)
    waiting = cli(project, "plan", "--detailed-exitcode")
    assert waiting.code == 0, waiting.out
    assert "is retired since 2026-11-29T12:00:00+00:00" in waiting.out
    assert "stay until 2026-12-06T12:00:00+00:00 (retention)" in waiting.out
    later(monkeypatch, 8)
    gone = cli(project, "plan", "--detailed-exitcode")
    assert gone.code == 2 and 'dkim["example.com/old"] will be destroyed' in gone.out
    assert cli(project, "apply", "--auto-approve").code == 0
    assert dkim_records(project) == {"new._domainkey.example.com"}


def test_a_queued_message_signed_with_it_holds_the_removal(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(project, "apply", "--auto-approve").code == 0  # retire
    spool = Spool(project / "relay-data" / "spool")
    envelope = {"from": "noreply@example.com", "dkim": "example.com/old"}
    asyncio.run(spool.store("held", envelope, b"Subject: x\r\n\r\nx\r\n"))
    later(monkeypatch, 8)
    held = cli(project, "plan", "--detailed-exitcode")
    assert held.code == 0, held.out
    assert "the 1 queued message(s) signed with it have left this relay" in held.out
    (project / "relay-data" / "spool" / "queue" / "held.msg").unlink()  # delivered
    assert cli(project, "plan", "--detailed-exitcode").code == 2


def test_declaring_it_again_brings_it_back_with_the_same_key(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = project / "state" / "state.json"
    key = json.loads(state.read_text())["resources"]['dkim["example.com/old"]']["computed"]
    assert cli(project, "apply", "--auto-approve").code == 0
    config = project / "postform.yaml"
    config.write_text(config.read_text().replace("    dkim:\n", "    dkim:\n" + RETIRED_LINE))
    assert cli(project, "apply", "--auto-approve").code == 0
    back = json.loads(state.read_text())["resources"]['dkim["example.com/old"]']
    assert "retired_at" not in back["attributes"]
    assert back["computed"]["private_key"] == key["private_key"]
    policy = read_policy(state)
    assert sorted(k.selector for k in policy.domains["example.com"].keys) == ["new", "old"]


def test_the_retention_is_configurable_and_may_not_be_shorter_than_the_queue(
    project: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project / "postform.yaml"
    text = config.read_text()
    config.write_text(text.replace("ttl: 300}", "ttl: 300, dkim_retention_days: 1}"))
    refused = cli(project, "validate")
    assert refused.code == 1
    assert "dns.dkim_retention_days" in refused.err
    assert "shorter than relay.delivery.max_age (259200 s)" in refused.err
    config.write_text(
        text.replace("ttl: 300}", "ttl: 300, dkim_retention_days: 4}").replace(
            "  data_dir: relay-data\n", "  data_dir: relay-data\n  delivery: {max_age: 86400}\n"
        )
    )
    assert cli(project, "apply", "--auto-approve").code == 0  # retire
    later(monkeypatch, 5)
    assert 'dkim["example.com/old"] will be destroyed' in cli(project, "plan").out
