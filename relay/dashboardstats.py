"""Deliverability figures from the relay's events: per hour and per day, overall and per
sending domain, for the dashboard and `postform relay report`.

Each recipient outcome counts once, on the hour its event was written (UTC): accepted
(messages and their recipients), delivered, deferred (attempts), hard and soft bounces
(the receiving server's refusal at delivery, or a bounce message that came back to the
return path later), complaints, recipients skipped as suppressed, and suppressions added
(a hard bounce, the fourth soft-bounced message, a complaint). Outcome events name their
sending domain; for events written before they did, the `accepted` line of the same
queue ID tells (remembered until the message completes, within a bound).

Rates follow what mailbox providers and SES publish: the bounce rate is bounced over
delivered + bounced (SES reviews an account at 5 %, and puts it at risk at 10 %); the
complaint rate is complaints over delivered (Gmail and Yahoo ask bulk senders to stay
under 0.1 % and never reach 0.3 %).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

BOUNCE_RATE_WARNING, BOUNCE_RATE_CRITICAL = 0.05, 0.10
COMPLAINT_RATE_WARNING, COMPLAINT_RATE_CRITICAL = 0.001, 0.003
UNKNOWN = "(unknown)"
NO_DOMAIN = "(none)"  # the null sender's bounces of bounces
REMEMBERED = 200_000  # queue IDs whose sending domain is kept for events without one
_ADDRESS = re.compile(r"<[^>]*>|\S+@\S+")


@dataclass
class Tally:
    accepted: int = 0  # messages
    recipients: int = 0  # of the accepted messages (the emails billed)
    delivered: int = 0
    deferred: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    complaints: int = 0
    suppressed: int = 0  # recipients not sent to: on the suppression list
    suppressions_added: int = 0
    rejected: int = 0  # messages refused at submission

    def add(self, other: Tally) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def bounces(self) -> int:
        return self.hard_bounces + self.soft_bounces

    @property
    def bounce_rate(self) -> float | None:
        judged = self.delivered + self.bounces
        return self.bounces / judged if judged else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complaints / self.delivered if self.delivered else None

    def as_dict(self) -> dict[str, Any]:
        rates = {"bounce_rate": self.bounce_rate, "complaint_rate": self.complaint_rate}
        return {**asdict(self), "bounces": self.bounces, **rates}


def rate_level(rate: float | None, warning: float, critical: float) -> str:
    if rate is None:
        return "none"
    return "critical" if rate >= critical else "warning" if rate >= warning else "ok"


def reason_of(reply: str) -> str:
    """A reply as a reason to count: addresses taken out, so that 'user unknown' for a
    thousand recipients is one reason."""
    text = _ADDRESS.sub("<…>", " ".join(reply.split()))
    return text[:120]


class Stats:
    """The tallies of the events fed, in [since, until) (ISO text; UTC timestamps sort)."""

    def __init__(self, since: str, until: str = "9999") -> None:
        self.since, self.until = since, until
        self.hours: dict[tuple[str, str], Tally] = {}  # ("2026-11-29T14", domain)
        self.bounce_reasons: Counter[str] = Counter()
        self.deferral_reasons: Counter[str] = Counter()
        self.accepted_at: list[str] = []  # the last minutes' acceptances (the rate)
        self._domains: dict[str, str] = {}
        self.first_ts: str | None = None
        self.last_ts: str | None = None

    def feed_all(self, records: Iterable[dict[str, Any]]) -> Stats:
        for record in records:
            self.feed(record)
        return self

    def feed(self, record: dict[str, Any]) -> None:
        event, ts = record.get("event"), record.get("ts")
        if not isinstance(ts, str) or not isinstance(event, str):
            return
        qid = str(record.get("queue_id") or "")
        if event == "accepted":
            domain = _domain_of(str(record.get("sender") or ""))
            self._remember(qid, domain)
        elif event == "completed":
            self._domains.pop(qid, None)
            return
        if not self.since <= ts < self.until:
            return
        handler = _HANDLERS.get(event)
        if handler is None:
            return
        given = record.get("sender_domain")
        if isinstance(given, str):
            domain = given
        else:
            domain = self._domains.get(qid, UNKNOWN) if qid else UNKNOWN
        self.first_ts = self.first_ts or ts
        self.last_ts = ts
        handler(self, self.cell(ts[:13], domain or NO_DOMAIN), record)

    def cell(self, hour: str, domain: str) -> Tally:
        key = (hour, domain)
        tally = self.hours.get(key)
        if tally is None:
            tally = self.hours[key] = Tally()
        return tally

    def _remember(self, qid: str, domain: str) -> None:
        if len(self._domains) >= REMEMBERED:  # the oldest go first (dicts keep order)
            del self._domains[next(iter(self._domains))]
        self._domains[qid] = domain

    # What the dashboard reads.

    def domains(self) -> list[str]:
        return sorted({d for _, d in self.hours})

    def total(self, domain: str | None = None) -> Tally:
        out = Tally()
        for (_, d), tally in self.hours.items():
            if domain is None or d == domain:
                out.add(tally)
        return out

    def series(self, width: int, domain: str | None = None) -> dict[str, Tally]:
        """Tallies by hour (width 13: '2026-11-29T14') or day (width 10)."""
        out: dict[str, Tally] = {}
        for (hour, d), tally in sorted(self.hours.items()):
            if domain is None or d == domain:
                out.setdefault(hour[:width], Tally()).add(tally)
        return out


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower() if "@" in address else ""


def _accepted(stats: Stats, tally: Tally, record: dict[str, Any]) -> None:
    tally.accepted += 1
    count = record.get("recipients")
    tally.recipients += count if isinstance(count, int) else len(record.get("rcpt_tos") or ())
    stats.accepted_at.append(str(record["ts"]))
    if len(stats.accepted_at) > 100_000:
        del stats.accepted_at[:50_000]


def _delivered(stats: Stats, tally: Tally, record: dict[str, Any]) -> None:
    tally.delivered += 1


def _deferred(stats: Stats, tally: Tally, record: dict[str, Any]) -> None:
    tally.deferred += 1
    stats.deferral_reasons[reason_of(str(record.get("reply") or "?"))] += 1


def _bounced(stats: Stats, tally: Tally, record: dict[str, Any]) -> None:
    if record.get("bounce") == "soft":
        tally.soft_bounces += 1
    else:
        tally.hard_bounces += 1
    reply = record.get("reply") or record.get("status") or "?"
    stats.bounce_reasons[reason_of(str(reply))] += 1
    if record.get("added"):
        tally.suppressions_added += 1


def _complaint(stats: Stats, tally: Tally, record: dict[str, Any]) -> None:
    tally.complaints += 1
    if record.get("added"):
        tally.suppressions_added += 1


def _suppressed(stats: Stats, tally: Tally, record: dict[str, Any]) -> None:
    if record.get("added"):
        tally.suppressions_added += 1
    else:
        tally.suppressed += 1


def _rejected(stats: Stats, tally: Tally, record: dict[str, Any]) -> None:
    tally.rejected += 1


# What the tallies read: `completed` ends a message's memory of its sending domain.
TALLIED = ("accepted", "completed", "delivered", "deferred", "bounced", "bounce_received",
           "complaint", "suppressed", "rejected")  # fmt: skip
_HANDLERS = {
    "accepted": _accepted,
    "delivered": _delivered,
    "deferred": _deferred,
    "bounced": _bounced,
    "bounce_received": _bounced,
    "complaint": _complaint,
    "suppressed": _suppressed,
    "rejected": _rejected,
}
