"""Charts as inline SVG: stacked bars over time, drawn on the server, so the dashboard
needs no script, font or stylesheet from anywhere (it renders offline, and in a mail)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 44, 22, 8


def stacked_bars(
    title: str,
    rows: Sequence[dict[str, Any]],
    label_key: str,
    series: Sequence[tuple[str, str, str]],  # (field, legend, colour)
) -> str:
    """One bar per row, its `series` fields stacked; the tallest bar fills the height."""
    peak = max([sum(int(r.get(f, 0)) for f, _, _ in series) for r in rows] + [1])
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(rows), 1)
    bar_w = max(step * 0.8, 1.0)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        _axis(peak, plot_h),
    ]
    for i, row in enumerate(rows):
        x, base = LEFT + i * step + (step - bar_w) / 2, float(TOP + plot_h)
        for field, legend, colour in series:
            value = int(row.get(field, 0))
            if value <= 0:
                continue
            h = value / peak * plot_h
            base -= h
            tip = f"{row[label_key]}: {value} {legend}"
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(tip)}</title></rect>'
            )
    parts.extend(_labels(rows, label_key, step))
    parts.append("</svg>")
    return "".join(parts) + _legend(series)


def _axis(peak: int, plot_h: float) -> str:
    y0 = TOP + plot_h
    return (
        f'<line x1="{LEFT}" y1="{y0}" x2="{WIDTH - 4}" y2="{y0}" stroke="#999"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end" font-size="10">{peak}</text>'
        f'<text x="{LEFT - 4}" y="{y0}" text-anchor="end" font-size="10">0</text>'
    )


def _labels(rows: Sequence[dict[str, Any]], label_key: str, step: float) -> list[str]:
    """About eight labels along the bottom, whatever the number of bars."""
    every = max(1, len(rows) // 8)
    out = []
    for i in range(0, len(rows), every):
        text = str(rows[i][label_key])
        short = text[5:].replace("T", " ") + ("h" if "T" in text else "")
        x = LEFT + i * step + step / 2
        anchor = "end" if x > WIDTH - 40 else "middle"  # the last label stays in the frame
        x = min(x, WIDTH - 2)
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}" '
            f'font-size="10">{escape(short)}</text>'
        )
    return out


def _legend(series: Sequence[tuple[str, str, str]]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{escape(legend)}</span>'
        for _, legend, colour in series
    )
    return f'<div class="legend">{items}</div>'


def meter(value: int, limit: int) -> str:
    """A bar of value against limit (red past 90 %)."""
    share = min(value / limit, 1.0) if limit > 0 else 0.0
    colour = "#c0392b" if share >= 0.9 else "#e67e22" if share >= 0.7 else "#27ae60"
    return (
        f'<svg class="meter" viewBox="0 0 200 10" width="200" height="10" '
        f'xmlns="http://www.w3.org/2000/svg"><rect width="200" height="10" fill="#eee"/>'
        f'<rect width="{share * 200:.1f}" height="10" fill="{colour}"/></svg>'
    )
