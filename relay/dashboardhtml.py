"""The dashboard page: one self-contained HTML document (inline CSS and SVG, no script,
font or link to anywhere), the same whether the relay serves it or `relay report --html`
writes it to mail to a team. Every figure carries a `data-` attribute naming it, so a
test (or a scraper) can read the numbers from the DOM."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from relay.dashboardsvg import meter, stacked_bars

OUTCOMES = (
    ("delivered", "delivered", "#27ae60"),
    ("deferred", "deferred", "#f1c40f"),
    ("soft_bounces", "soft bounces", "#e67e22"),
    ("hard_bounces", "hard bounces", "#c0392b"),
    ("complaints", "complaints", "#8e44ad"),
)
COUNTS = (
    ("accepted", "Accepted messages"),
    ("recipients", "Recipients"),
    ("delivered", "Delivered"),
    ("deferred", "Deferred"),
    ("hard_bounces", "Hard bounces"),
    ("soft_bounces", "Soft bounces"),
    ("complaints", "Complaints"),
    ("suppressions_added", "Suppressions added"),
)
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
.cards{display:flex;flex-wrap:wrap;gap:.6em}.card{border:1px solid #ddd;border-radius:6px;
padding:.5em .8em;min-width:8em}.card b{display:block;font-size:1.5em}
table{border-collapse:collapse;margin:.4em 0}td,th{border-bottom:1px solid #eee;
padding:.2em .6em;text-align:right}td:first-child,th:first-child{text-align:left}
.ok{color:#1e8449}.warning{color:#b9770e}.critical{color:#c0392b;font-weight:bold}
.none{color:#888}.legend{font-size:12px;margin-bottom:1em}.key{margin-right:1em}
.key i{display:inline-block;width:10px;height:10px;margin-right:4px}
.muted{color:#777}
"""


def render(snap: Mapping[str, Any]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width">',
        f"<title>postform deliverability since {escape(snap['since'][:16])}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>postform deliverability</h1>",
        f'<p class="muted">{escape(snap["scope"])}; events since '
        f'<span data-since="">{escape(snap["since"][:16])}</span> UTC; generated '
        f'<span data-generated="">{escape(snap["generated_at"])}</span>.</p>',
        _cards(snap["totals"]),
        _rates(snap),
        _limits(snap["limits"]),
        _usage(snap.get("usage")),
        "<h2>Per hour</h2>",
        stacked_bars("Recipients per hour", snap["hourly"], "hour", OUTCOMES),
        "<h2>Per day</h2>",
        stacked_bars("Recipients per day", snap["daily"], "day", OUTCOMES),
        _series_table("daily", "day", snap["daily"]),
        _domains(snap["domains"], snap["thresholds"]),
        _queue(snap["queue"]),
        _reasons("Top bounce reasons", "bounce", snap["bounce_reasons"]),
        _reasons("Top deferral reasons", "deferral", snap["deferral_reasons"]),
        _dns(snap["dns"]),
        "<details><summary>Per hour, as a table</summary>",
        _series_table("hourly", "hour", snap["hourly"]),
        "</details></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.2f} %"


def _cards(totals: Mapping[str, Any]) -> str:
    cards = "".join(
        f'<div class="card">{escape(label)}<b data-kpi="{key}">{_num(totals[key])}</b></div>'
        for key, label in COUNTS
    )
    return f'<div class="cards">{cards}</div>'


def _rates(snap: Mapping[str, Any]) -> str:
    totals, levels, limits = snap["totals"], snap["levels"], snap["thresholds"]
    rows = []
    for key, label in (("bounce_rate", "Bounce rate"), ("complaint_rate", "Complaint rate")):
        level = levels[key]
        rows.append(
            f"<tr><td>{label}</td><td class='{level}' data-rate='{key}' data-level='{level}'>"
            f"{pct(totals[key])}</td><td>{escape(level)}</td><td class='muted'>warning at "
            f"{pct(limits[key]['warning'])}, critical at {pct(limits[key]['critical'])}</td></tr>"
        )
    return (
        "<h2>Reputation</h2><table>"
        + "".join(rows)
        + "</table>"
        + (
            "<p class='muted'>Bounce rate: bounced / (delivered + bounced), SES reviews at 5 %. "
            "Complaint rate: complaints / delivered; Gmail and Yahoo require under 0.3 %.</p>"
        )
    )


def _limits(limits: Mapping[str, int]) -> str:
    today, per_day = limits["recipients_today"], limits["recipients_per_day"]
    now, per_min = limits["messages_last_minute"], limits["messages_per_minute"]
    return (
        "<h2>Limits</h2><table>"
        f"<tr><td>Recipients today (UTC)</td><td data-limit='recipients_today'>{_num(today)}"
        f"</td><td>of {_num(per_day)}</td><td>{meter(today, per_day)}</td></tr>"
        f"<tr><td>Messages in the last minute</td><td data-limit='messages_last_minute'>"
        f"{_num(now)}</td><td>of {_num(per_min)}</td><td>{meter(now, per_min)}</td></tr>"
        "</table>"
    )


def _usage(usage: Mapping[str, Any] | None) -> str:
    if not usage:
        return ""
    totals, ahead, pricing = usage["totals"], usage["projected"], usage["pricing"]
    cur = escape(pricing["currency"])
    return (
        f"<h2>Usage in {escape(usage['month'])}</h2><table>"
        f"<tr><td>Emails sent</td><td data-usage='emails'>{_num(totals['emails'])}</td></tr>"
        f"<tr><td>Free per month</td><td>{_num(pricing['free_per_month'])}</td></tr>"
        f"<tr><td>Billable</td><td data-usage='billable'>{_num(totals['billable'])}</td></tr>"
        f"<tr><td>Cost so far</td><td data-usage='cost'>{totals['cost']:.2f} {cur}</td></tr>"
        f"<tr><td>Projected month end</td><td data-usage='projected'>"
        f"{_num(ahead['emails'])} emails, {ahead['cost']:.2f} {cur}</td></tr></table>"
    )


def _series_table(name: str, key: str, rows: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for _, label in COUNTS)
    body = []
    for row in rows:
        cells = "".join(f'<td data-col="{k}">{_num(row[k])}</td>' for k, _ in COUNTS)
        body.append(f'<tr data-{name}="{escape(row[key])}"><td>{escape(row[key])}</td>{cells}</tr>')
    return f"<table data-table='{name}'><tr><th>{key}</th>{head}</tr>{''.join(body)}</table>"


def _domains(domains: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, Any]) -> str:
    if not domains:
        return "<h2>Per sending domain</h2><p>No mail in this window.</p>"
    head = "".join(f"<th>{escape(label)}</th>" for _, label in COUNTS)
    rows, details = [], []
    for domain, view in domains.items():
        t, lv = view["totals"], view["levels"]
        cells = "".join(f'<td data-col="{k}">{_num(t[k])}</td>' for k, _ in COUNTS)
        rates = "".join(
            f"<td class='{lv[k]}' data-col='{k}'>{pct(t[k])}</td>"
            for k in ("bounce_rate", "complaint_rate")
        )
        name = escape(domain)
        rows.append(f'<tr data-domain="{name}"><td>{name}</td>{cells}{rates}</tr>')
        details.append(
            f"<details><summary>{name} per hour and per day</summary>"
            + stacked_bars(f"{domain} per hour", view["hourly"], "hour", OUTCOMES)
            + stacked_bars(f"{domain} per day", view["daily"], "day", OUTCOMES)
            + _series_table("daily", "day", view["daily"])
            + "</details>"
        )
    return (
        "<h2>Per sending domain</h2><table data-table='domains'><tr><th>domain</th>"
        f"{head}<th>Bounce rate</th><th>Complaint rate</th></tr>{''.join(rows)}</table>"
        + "".join(details)
    )


def _queue(queue: Mapping[str, Any]) -> str:
    age = queue["oldest_age_seconds"]
    shown = "–" if age is None else f"{age:,.0f} s"
    dests = "".join(
        f"<tr><td>{escape(d)}</td><td>{_num(n)}</td></tr>"
        for d, n in queue["deferred_by_destination"].items()
    )
    return (
        "<h2>Queue</h2><table>"
        f"<tr><td>Messages queued</td><td data-queue='messages'>{_num(queue['messages'])}</td></tr>"
        f"<tr><td>Oldest message</td><td data-queue='oldest'>{shown}</td></tr></table>"
        + (
            f"<table><tr><th>deferred to</th><th>recipients</th></tr>{dests}</table>"
            if dests
            else ""
        )
        + _reasons("Why queued recipients wait", "queue", queue["deferral_reasons"])
    )


def _reasons(title: str, kind: str, reasons: Iterable[Sequence[Any]]) -> str:
    rows = "".join(
        f"<tr data-{kind}-reason=''><td>{escape(str(r))}</td><td>{_num(n)}</td></tr>"
        for r, n in reasons
    )
    return f"<h2>{escape(title)}</h2>" + (f"<table>{rows}</table>" if rows else "<p>None.</p>")


def _dns(dns: Mapping[str, Mapping[str, Any]]) -> str:
    if not dns:
        return (
            "<h2>DNS health</h2><p>No DNS check recorded: run <code>postform dns verify</code>.</p>"
        )
    rows = []
    for domain, checks in dns.items():
        cells = "".join(
            f"<td class='{_dns_class(checks.get(k))}' data-dns='{k}'>"
            f"{escape(str(checks.get(k) or '–'))}</td>"
            for k in ("spf", "dkim", "dmarc")
        )
        when = escape(str(checks.get("checked_on") or "–"))
        name = escape(domain)
        rows.append(
            f'<tr data-dns-domain="{name}"><td>{name}</td>{cells}'
            f'<td data-dns="checked_on">{when}</td></tr>'
        )
    return (
        "<h2>DNS health (last <code>dns verify</code>)</h2><table><tr><th>domain</th><th>SPF</th>"
        f"<th>DKIM</th><th>DMARC</th><th>checked</th></tr>{''.join(rows)}</table>"
    )


def _dns_class(status: Any) -> str:
    return "ok" if status == "ok" else "none" if not status else "critical"
