"""The dashboard as plain data: what the HTML page draws and `/dashboard.json` serves.

Shape (every count is a `Tally.as_dict()`: accepted, recipients, delivered, deferred,
hard_bounces, soft_bounces, bounces, complaints, suppressed, suppressions_added,
rejected, bounce_rate, complaint_rate):
    {"generated_at", "since", "scope", "thresholds", "totals", "levels",
     "hourly": [{"hour", ...counts}], "daily": [{"day", ...counts}],
     "domains": {domain: {"totals", "levels", "daily", "hourly"}},
     "limits": {"recipients_today", "recipients_per_day", "messages_last_minute",
                "messages_per_minute"},
     "queue": {"messages", "oldest_age_seconds", "deferred_by_destination",
               "deferral_reasons"},
     "bounce_reasons", "deferral_reasons": [[reason, count]],
     "dns": {domain: {"spf", "dkim", "dmarc", "checked_at"}}, "usage": {...} | null}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.contract.settings import Limits
from relay.dashboardstats import (
    BOUNCE_RATE_CRITICAL,
    BOUNCE_RATE_WARNING,
    COMPLAINT_RATE_CRITICAL,
    COMPLAINT_RATE_WARNING,
    Stats,
    Tally,
    rate_level,
)
from relay.queueview import QueueView

HOURS_SHOWN = 48  # the hourly chart's span (or the window's, when shorter)
TOP = 10


def snapshot(
    stats: Stats,
    *,
    now: datetime,
    limits: Limits,
    queue: QueueView,
    dns: Mapping[str, Mapping[str, Any]],
    usage: Mapping[str, Any] | None,
    scope: str,
) -> dict[str, Any]:
    since = datetime.fromisoformat(stats.since)
    hours = _hours(max(since, now - timedelta(hours=HOURS_SHOWN)), now)
    days = _days(since, now)
    domains = {
        d: _view(stats, d, hours, days) for d in stats.domains() if stats.total(d).accepted
        or stats.total(d).delivered or stats.total(d).bounces or stats.total(d).complaints
    }  # fmt: skip
    overall = _view(stats, None, hours, days)
    return {
        "generated_at": now.isoformat(timespec="seconds"),
        "since": stats.since,
        "scope": scope,
        "thresholds": {
            "bounce_rate": {"warning": BOUNCE_RATE_WARNING, "critical": BOUNCE_RATE_CRITICAL},
            "complaint_rate": {
                "warning": COMPLAINT_RATE_WARNING,
                "critical": COMPLAINT_RATE_CRITICAL,
            },
        },
        **overall,
        "domains": domains,
        "limits": _limits(stats, now, limits),
        "queue": asdict(queue),
        "bounce_reasons": stats.bounce_reasons.most_common(TOP),
        "deferral_reasons": stats.deferral_reasons.most_common(TOP),
        "dns": {d: dict(v) for d, v in sorted(dns.items())},
        "usage": dict(usage) if usage is not None else None,
    }


def _view(stats: Stats, domain: str | None, hours: list[str], days: list[str]) -> dict[str, Any]:
    total = stats.total(domain)
    hourly, daily = stats.series(13, domain), stats.series(10, domain)
    return {
        "totals": total.as_dict(),
        "levels": levels(total),
        "hourly": [{"hour": h, **hourly.get(h, Tally()).as_dict()} for h in hours],
        "daily": [{"day": d, **daily.get(d, Tally()).as_dict()} for d in days],
    }


def levels(total: Tally) -> dict[str, str]:
    """ok / warning / critical (none: nothing to judge yet) for each rate."""
    return {
        "bounce_rate": rate_level(total.bounce_rate, BOUNCE_RATE_WARNING, BOUNCE_RATE_CRITICAL),
        "complaint_rate": rate_level(
            total.complaint_rate, COMPLAINT_RATE_WARNING, COMPLAINT_RATE_CRITICAL
        ),
    }


def _limits(stats: Stats, now: datetime, limits: Limits) -> dict[str, int]:
    today = now.astimezone(UTC).strftime("%Y-%m-%d")
    minute_ago = (now - timedelta(seconds=60)).isoformat()
    return {
        "recipients_today": stats.series(10).get(today, Tally()).recipients,
        "recipients_per_day": limits.recipients_per_day,
        "messages_last_minute": sum(1 for ts in stats.accepted_at if ts >= minute_ago),
        "messages_per_minute": limits.messages_per_minute,
    }


def _hours(start: datetime, end: datetime) -> list[str]:
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out: list[str] = []
    while hour <= end and len(out) < 24 * 400:
        out.append(hour.strftime("%Y-%m-%dT%H"))
        hour += timedelta(hours=1)
    return out


def _days(start: datetime, end: datetime) -> list[str]:
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    out: list[str] = []
    while day <= end and len(out) < 400:
        out.append(day.strftime("%Y-%m-%d"))
        day += timedelta(days=1)
    return out
