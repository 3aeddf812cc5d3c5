"""`postform relay usage`: a month's emails per day and sending domain, and their cost,
from event files written by the relay's own EventLog at chosen times."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import relay.events
import relay.usage
from relay.events import EventLog
from relay.usage import Pricing, UsageError, parse_month, projected, read_usage
from relay.usagereport import summary


class Clock:
    """Stands in for relay.events.datetime so EventLog stamps lines at a chosen time."""

    at = datetime(2026, 11, 1, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> datetime:
        return cls.at


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """write(iso_time, event, **fields): one line in tmp_path/data/events.jsonl."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setattr(relay.events, "datetime", Clock)
    event_log = EventLog(stream=io.StringIO(), path=folder / "events.jsonl", max_bytes=1000)

    def write(when: str, event: str, **fields: Any) -> None:
        Clock.at = datetime.fromisoformat(when).replace(tzinfo=UTC)
        event_log.emit(event, **fields)

    write.folder = folder  # type: ignore[attr-defined]
    return write


def send(write, when: str, qid: str, sender: str, rcpts: list[str], outcome: str = "delivered"):
    write(when, "accepted", queue_id=qid, peer="127.0.0.1", user="app", sender=sender,
          recipients=len(rcpts), size=100, dkim=None)  # fmt: skip
    for rcpt in rcpts:
        write(when, outcome, queue_id=qid, recipient=rcpt, host="mx", reply="250 ok", attempts=1)


def two_days_two_domains(write) -> None:
    send(write, "2026-10-31T23:59:59", "q0", "a@example.com", ["x@d.test"])  # October
    send(write, "2026-11-01T08:00:00", "q1", "a@example.com", ["x@d.test", "y@d.test"])
    send(write, "2026-11-01T09:00:00", "q2", "b@other.test", ["z@d.test"], outcome="bounced")
    send(write, "2026-11-02T10:00:00", "q3", "a@example.com", ["x@d.test"])
    send(write, "2026-11-02T11:00:00", "q4", "c@Other.test", ["x@d.test", "y@d.test", "w@d.t"])
    # A message accepted in November, delivered in December, and December's own mail.
    write("2026-11-30T23:59:00", "accepted", queue_id="q5", sender="a@example.com", recipients=1)
    write("2026-12-01T00:00:01", "delivered", queue_id="q5", recipient="x@d.test")
    send(write, "2026-12-01T00:00:02", "q6", "a@example.com", ["x@d.test"])


def test_two_days_two_domains_summed_and_other_months_ignored(log) -> None:
    two_days_two_domains(log)
    assert len(list(log.folder.glob("events.jsonl*"))) > 2  # rotated: read across files
    usage = read_usage(log.folder, "2026-11")
    rows = {(r.day, r.domain): (r.messages, r.emails, r.delivered, r.bounced) for r in usage.rows()}
    assert rows == {
        ("2026-11-01", "example.com"): (1, 2, 2, 0),
        ("2026-11-01", "other.test"): (1, 1, 0, 1),
        ("2026-11-02", "example.com"): (1, 1, 1, 0),
        ("2026-11-02", "other.test"): (1, 3, 3, 0),
        ("2026-11-30", "example.com"): (1, 1, 0, 0),
    }
    assert usage.total("emails") == 8 and usage.total("messages") == 5
    december = read_usage(log.folder, "2026-12")
    assert [(r.domain, r.messages, r.delivered) for r in december.rows()] == [
        ("example.com", 1, 2)  # q5's delivery is December's, attributed via its accepted line
    ]


def test_only_the_files_that_can_hold_the_month_are_opened(log) -> None:
    for day in range(1, 29):
        send(log, f"2026-10-{day:02d}T12:00:00", f"o{day}", "a@example.com", ["x@d.test"])
    send(log, "2026-11-03T12:00:00", "n1", "a@example.com", ["x@d.test"])
    files = sorted(log.folder.glob("events.jsonl*"))
    usage = read_usage(log.folder, "2026-11")
    assert usage.total("emails") == 1 and usage.files_read < len(files)


def test_free_tier_and_price() -> None:
    pricing = Pricing()
    assert pricing.billable(3500) == 400 and pricing.cost(3500) == Decimal("0.0340")
    assert pricing.billable(3000) == 0 and pricing.cost(3000) == 0
    custom = Pricing(free=0, per_thousand=Decimal("1.5"))
    assert custom.cost(2500) == Decimal("3.7500")


def test_projection_for_the_current_month_and_full_figure_for_a_past_one(log) -> None:
    send(log, "2026-11-02T08:00:00", "q1", "a@example.com", [f"r{i}@d.test" for i in range(10)])
    usage = read_usage(log.folder, "2026-11")
    tenth = datetime(2026, 11, 10, 15, tzinfo=UTC)
    assert projected(usage, tenth) == 30  # 10 emails in 10 days of 30
    report = summary(usage, Pricing(free=20), tenth)
    assert report["projected"] == {
        "emails": 30,
        "billable": 10,
        "cost": 0.0009,
    }  # rounded to 0.0001
    assert report["complete"] is False and report["days_elapsed"] == 10
    later = datetime(2027, 1, 5, tzinfo=UTC)
    assert projected(usage, later) == 10 and summary(usage, Pricing(), later)["complete"]


def test_month_arguments() -> None:
    now = datetime(2026, 11, 10, tzinfo=UTC)
    assert parse_month(None, now) == "2026-11" and parse_month("2025-02", now) == "2025-02"
    for bad in ("2026-13", "Nov", "2026-1"):
        with pytest.raises(UsageError, match="expected YYYY-MM"):
            parse_month(bad, now)
    with pytest.raises(UsageError, match="not begun"):
        parse_month("2026-12", now)


def test_json_and_csv_through_the_cli(log, project: Path, cli, monkeypatch) -> None:
    two_days_two_domains(log)
    monkeypatch.setattr(relay.usage, "now_utc", lambda: datetime(2026, 12, 5, tzinfo=UTC))
    data = str(log.folder)
    result = cli(project, "relay", "usage", "--month", "2026-11", "--json", "--data-dir", data)
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert set(report) == {
        "month", "complete", "days_in_month", "days_elapsed", "pricing", "totals", "projected",
        "days",
    }  # fmt: skip
    assert report["totals"] == {
        "messages": 5, "emails": 8, "delivered": 6, "bounced": 1, "deferred": 0,
        "billable": 0, "cost": 0.0,
    }  # fmt: skip
    assert report["pricing"]["free_per_month"] == 3100
    assert report["pricing"]["price_per_1000"] == 0.085
    assert report["projected"]["emails"] == 8 and report["complete"] is True
    assert report["days"][0] == {
        "day": "2026-11-01", "domain": "example.com", "messages": 1, "emails": 2,
        "delivered": 2, "bounced": 0, "deferred": 0,
    }  # fmt: skip
    rows = cli(project, "relay", "usage", "--month", "2026-11", "--csv", "--data-dir", data)
    parsed = list(csv.DictReader(io.StringIO(rows.out)))
    assert rows.code == 0 and len(parsed) == 5
    assert parsed[3] == {
        "day": "2026-11-02", "domain": "other.test", "messages": "1", "emails": "3",
        "delivered": "3", "bounced": "0", "deferred": "0",
    }  # fmt: skip
    paid = cli(project, "relay", "usage", "--month", "2026-11", "--free", "5",
               "--price-per-1000", "10", "--data-dir", data)  # fmt: skip
    assert paid.code == 0 and "Billable: 3" in paid.out and "Cost: 0.0300 USD" in paid.out
    assert "TOTAL" in paid.out and "other.test" in paid.out and "Projected" not in paid.out


def test_cli_errors_and_empty_months(log, project: Path, cli, tmp_path: Path) -> None:
    data = str(log.folder)
    both = cli(project, "relay", "usage", "--json", "--csv", "--data-dir", data)
    assert both.code == 1 and "--json and --csv" in both.err and "Traceback" not in both.err
    price = cli(project, "relay", "usage", "--price-per-1000", "cheap", "--data-dir", data)
    assert price.code == 1 and "--price-per-1000" in price.err
    month = cli(project, "relay", "usage", "--month", "11/2026", "--data-dir", data)
    assert month.code == 1 and "YYYY-MM" in month.err
    missing = cli(project, "relay", "usage", "--data-dir", str(tmp_path / "nowhere"))
    assert missing.code == 1 and "no relay data folder" in missing.err
    empty = cli(project, "relay", "usage", "--month", "2020-01", "--json", "--data-dir", data)
    assert empty.code == 0 and "no accepted or delivered mail in 2020-01" in empty.err
    assert json.loads(empty.out)["totals"]["emails"] == 0


def test_a_real_relay_counts_what_it_accepted(relay) -> None:
    from tests.relayproc import message

    with relay.smtp() as client:
        client.sendmail("noreply@example.com", ["a@example.org", "b@example.org"], message())
        client.sendmail("alerts@rsa.example", ["c@example.org"], message("alerts@rsa.example"))
    month = relay.events_seen("accepted", 2)[0]["ts"][:7]  # a run at midnight on the 31st
    result = relay.postform("relay", "usage", "--json", "--month", month)
    report = json.loads(result.stdout)
    domains = {row["domain"]: (row["messages"], row["emails"]) for row in report["days"]}
    assert domains == {"example.com": (1, 2), "rsa.example": (1, 1)}
    assert report["totals"]["emails"] == 3 and report["totals"]["billable"] == 0
