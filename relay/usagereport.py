"""The monthly usage report in its three shapes: a table for people, JSON and CSV for tools.

JSON shape (`postform relay usage --json`):
    {"month": "2026-11", "complete": false, "days_in_month": 30, "days_elapsed": 15,
     "pricing": {"model": "oci-email-delivery", "unit": "...", "free_per_month": 3100,
                 "price_per_1000": 0.085, "currency": "USD"},
     "totals": {"messages", "emails", "delivered", "bounced", "deferred", "billable", "cost"},
     "projected": {"emails", "billable", "cost"},
     "days": [{"day", "domain", "messages", "emails", "delivered", "bounced", "deferred"}]}
CSV: a header, then one row per day and sending domain with the `days` fields.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

from relay.usage import CURRENCY, DayDomain, Pricing, Usage, days_in, projected

COUNTS = ("messages", "emails", "delivered", "bounced", "deferred")
UNIT = "recipient of an accepted message"


def summary(usage: Usage, pricing: Pricing, now: datetime) -> dict[str, Any]:
    """The report as plain data (the documented JSON shape)."""
    complete = now.astimezone(UTC).strftime("%Y-%m") != usage.month
    total = days_in(usage.month)
    emails = usage.total("emails")
    ahead = projected(usage, now)
    totals: dict[str, Any] = {name: usage.total(name) for name in COUNTS}
    totals.update(billable=pricing.billable(emails), cost=float(pricing.cost(emails)))
    return {
        "month": usage.month,
        "complete": complete,
        "days_in_month": total,
        "days_elapsed": total if complete else now.astimezone(UTC).day,
        "pricing": {
            "model": "oci-email-delivery",
            "unit": UNIT,
            "free_per_month": pricing.free,
            "price_per_1000": float(pricing.per_thousand),
            "currency": CURRENCY,
        },
        "totals": totals,
        "projected": {
            "emails": ahead,
            "billable": pricing.billable(ahead),
            "cost": float(pricing.cost(ahead)),
        },
        "days": [asdict(row) for row in usage.rows()],
    }


def as_csv(usage: Usage) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([f.name for f in fields(DayDomain)])
    for row in usage.rows():
        writer.writerow([getattr(row, f.name) for f in fields(DayDomain)])
    return buffer.getvalue()


def as_text(report: dict[str, Any]) -> str:
    """The table and the billing lines, for people."""
    month, totals, ahead = report["month"], report["totals"], report["projected"]
    price = report["pricing"]
    state = "complete" if report["complete"] else f"day {report['days_elapsed']}"
    lines = [f"Usage for {month} (UTC, {state} of {report['days_in_month']})", ""]
    lines += _table(report["days"], totals)
    money = f"{price['price_per_1000']:g} {price['currency']} per 1,000"
    lines += [
        "",
        f"Emails sent (each {price['unit']}): {totals['emails']:,}",
        f"Free per month: {price['free_per_month']:,}   Billable: {totals['billable']:,}   "
        f"Cost: {totals['cost']:.4f} {price['currency']} (at {money})",
    ]
    if not report["complete"]:
        lines.append(
            f"Projected month end: {ahead['emails']:,} emails, {ahead['billable']:,} billable, "
            f"{ahead['cost']:.4f} {price['currency']}"
        )
    return "\n".join(lines) + "\n"


def _table(days: list[dict[str, Any]], totals: dict[str, Any]) -> list[str]:
    headers = ["DAY", "DOMAIN", *(c.upper() for c in COUNTS)]
    body = [[d["day"], d["domain"], *(str(d[c]) for c in COUNTS)] for d in days]
    body.append(["TOTAL", "", *(str(totals[c]) for c in COUNTS)])
    widths = [max(len(r[i]) for r in [headers, *body]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        left = [cells[i].ljust(widths[i]) for i in (0, 1)]
        right = [cells[i].rjust(widths[i]) for i in range(2, len(cells))]
        return "  ".join(left + right).rstrip()

    return [line(headers), *(line(r) for r in body)]
