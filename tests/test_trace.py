"""`postform relay trace` (issue #16): a message found by queue ID, Message-ID or recipient
through the event index, with a real relay; the index follows appends and rotations and
prunes by retention."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import relay.events
from relay.eventindex import EventIndex
from relay.events import EventLog


def test_a_message_is_found_by_recipient_message_id_and_queue_id(relay) -> None:
    from tests.relayproc import message

    msgid = "<trace-test-1@app.example.com>"
    with relay.smtp() as client:
        client.sendmail(
            "noreply@example.com",
            ["Trace.One@example.org", "two@example.org"],
            message(extra=f"Message-ID: {msgid}\r\n"),
        )
    accepted = next(e for e in relay.events_seen("accepted") if e.get("message_id") == msgid)
    queue_id = accepted["queue_id"]
    assert accepted["rcpt_tos"] == ["Trace.One@example.org", "two@example.org"]
    for query in ("trace.one@example.org", msgid, queue_id):
        result = relay.postform("relay", "trace", query)
        assert f"Message {queue_id}:" in result.stdout, (query, result.stdout)
        assert "accepted" in result.stdout
    doc = json.loads(relay.postform("relay", "trace", msgid, "--json").stdout)
    assert [m["queue_id"] for m in doc["messages"]] == [queue_id]
    assert doc["messages"][0]["events"][0]["event"] == "accepted"
    missing = relay.postform("relay", "trace", "nobody@example.org", check=False)
    assert missing.returncode == 2 and "No message matches nobody@example.org" in missing.stdout


class Clock(datetime):
    at = datetime(2026, 11, 1, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:
        return cls.at


def test_the_index_follows_appends_and_rotations_and_prunes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay.events, "datetime", Clock)
    log = EventLog(stream=io.StringIO(), path=tmp_path / "events.jsonl", max_bytes=2_000)
    index = EventIndex(tmp_path, retention_days=30)

    def life(i: int, day: int) -> None:
        Clock.at = datetime(2026, 11, day, tzinfo=UTC) + timedelta(seconds=i)
        log.emit("accepted", queue_id=f"q{i}", rcpt_tos=[f"r{i}@x.test"], message_id=f"<m{i}@x>")
        log.emit("delivered", queue_id=f"q{i}", recipient=f"r{i}@x.test", host="mx.x.test")

    for i in range(10):
        life(i, 1)
    assert index.update(Clock.at) == 20
    for i in range(10, 40):  # enough to rotate the file several times
        life(i, 20)
    assert (tmp_path / "events.jsonl.1").exists()
    assert index.update(Clock.at) == 60  # only what was appended: nothing twice, nothing lost
    assert index.update(Clock.at) == 0
    assert [e["event"] for e in index.events("q25")] == ["accepted", "delivered"]
    assert index.queue_ids("R25@x.test") == ["q25"] and index.queue_ids("<m25@x>") == ["q25"]
    index.update(datetime(2026, 12, 5, tzinfo=UTC))  # day 1 is now past the 30 days
    assert index.queue_ids("r5@x.test") == [] and index.events("q5") == []
    assert index.queue_ids("r25@x.test") == ["q25"]
    plan = index.db.execute(
        "EXPLAIN QUERY PLAN SELECT queue_id FROM keys WHERE key = ? AND ts >= ?", ("k", "")
    ).fetchall()
    assert any("PRIMARY KEY" in str(row) or "INDEX" in str(row) for row in plan)  # no scan
    index.close()


def test_the_index_keeps_events_for_the_applied_retention(project: Path, cli) -> None:
    config = project / "postform.yaml"
    config.write_text(
        config.read_text().replace(
            "ipv4: [192.0.2.10]}", "ipv4: [192.0.2.10], event_retention_days: 3}"
        )
    )
    assert cli(project, "apply", "--auto-approve").code == 0
    data = project / "relaydata"
    data.mkdir()
    now = datetime.now(UTC)
    lines = [
        {"ts": (now - timedelta(days=days)).isoformat(timespec="milliseconds"),
         "event": "accepted", "queue_id": f"Q{days}", "rcpt_tos": ["kept@example.org"]}
        for days in (5, 2)
    ]  # fmt: skip
    (data / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    found = cli(project, "relay", "trace", "kept@example.org", "--json", "--data-dir", str(data))
    assert [m["queue_id"] for m in json.loads(found.out)["messages"]] == ["Q2"]  # Q5 pruned
