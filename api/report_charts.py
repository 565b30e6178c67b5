"""Small SVG charts for the reports: bars or lines, axes with labels, a title and a legend.

Every text is XML-escaped, since labels come from the catalog (product names, categories).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

from models.order_flow_reports import StageTime
from models.reports import Period
from models.sales_reports import SalesRow, SellerRow

WIDTH, HEIGHT = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 48, 96
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1")
# More category labels than this on the x axis overlap; only every n-th is written.
MAX_X_LABELS = 24
LABEL_CHARS = 18
# Products and categories beyond this many make bars too thin to read; the rest are left out.
MAX_BARS = 30


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label."""

    name: str
    values: Sequence[float]


def _text(value: object) -> str:
    return escape(str(value), {'"': "&quot;"})


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.2f}"


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def _frame(title: str, y_label: str, x_label: str, top: float) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">',
        f"<title>{_text(title)}</title>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{_text(title)}</text>',
    ]
    for i in range(6):
        value = top * i / 5
        y = TOP + PLOT_H - PLOT_H * i / 5
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_text(_number(value))}</text>'
        )
    parts += [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + PLOT_H}" stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{LEFT + PLOT_W}" y2="{TOP + PLOT_H}" '
        'stroke="#333"/>',
        f'<text x="16" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + PLOT_H / 2})">{_text(y_label)}</text>',
        f'<text x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{_text(x_label)}</text>",
    ]
    return parts


def _x_labels(labels: Sequence[str], centres: Sequence[float]) -> list[str]:
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    y = TOP + PLOT_H + 14
    return [
        f'<text x="{x:.1f}" y="{y}" text-anchor="end" transform="rotate(-35 {x:.1f} {y})">'
        f"{_text(_short(label))}<title>{_text(label)}</title></text>"
        for i, (label, x) in enumerate(zip(labels, centres, strict=True))
        if i % every == 0
    ]


def _legend(series: Sequence[Series]) -> list[str]:
    if len(series) < 2:
        return []
    parts = []
    for i, s in enumerate(series):
        x = LEFT + 8 + i * 150
        parts.append(
            f'<rect x="{x}" y="{TOP - 14}" width="10" height="10" '
            f'fill="{COLOURS[i % len(COLOURS)]}"/>'
            f'<text x="{x + 14}" y="{TOP - 5}">{_text(s.name)}</text>'
        )
    return parts


def chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    kind: Literal["bar", "line"] = "bar",
    y_label: str = "",
    x_label: str = "",
) -> str:
    """Bars per label (side by side for several series), or one line per series."""
    for s in series:
        if len(s.values) != len(labels):
            raise ValueError(f"series {s.name!r} has {len(s.values)} values for {len(labels)}")
    top = nice_ceiling(max((v for s in series for v in s.values), default=0))
    parts = _frame(title, y_label, x_label, top)
    slot = PLOT_W / max(1, len(labels))
    centres = [LEFT + slot * (i + 0.5) for i in range(len(labels))]

    def y_of(value: float) -> float:
        return TOP + PLOT_H - PLOT_H * max(0.0, value) / top

    if not labels:
        parts.append(
            f'<text x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
            'fill="#777">no data in this period</text>'
        )
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        if kind == "bar":
            width = slot * 0.8 / max(1, len(series))
            for j, v in enumerate(s.values):
                x = LEFT + slot * j + slot * 0.1 + width * i
                parts.append(
                    f'<rect x="{x:.1f}" y="{y_of(v):.1f}" width="{width:.1f}" '
                    f'height="{TOP + PLOT_H - y_of(v):.1f}" fill="{colour}">'
                    f"<title>{_text(labels[j])}: {_text(_number(v))}</title></rect>"
                )
        else:
            points = " ".join(
                f"{x:.1f},{y_of(v):.1f}" for x, v in zip(centres, s.values, strict=True)
            )
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            parts += [
                f'<circle cx="{x:.1f}" cy="{y_of(v):.1f}" r="3" fill="{colour}">'
                f"<title>{_text(label)}: {_text(_number(v))}</title></circle>"
                for x, v, label in zip(centres, s.values, labels, strict=True)
            ]
    parts += _x_labels(labels, centres)
    parts += _legend(series)
    parts.append("</svg>")
    return "\n".join(parts)


# The reports' charts.


def main_currency(rows: Sequence[SalesRow]) -> str | None:
    """The currency of the most orders (ties by code), or None without sales."""
    orders: dict[str, int] = {}
    for r in rows:
        orders[r.currency] = orders.get(r.currency, 0) + r.orders
    return min(orders, key=lambda c: (-orders[c], c)) if orders else None


def sales_chart(rows: Sequence[SalesRow], by: str, currency: str, period: Period) -> str:
    """Revenue in one currency per day (a line), or per week, product, category or channel."""
    mine = [r for r in rows if r.currency == currency]
    if by in ("product", "category"):
        mine = mine[:MAX_BARS]
    return chart(
        f"Revenue by {by} in {currency}, {period.first} to {period.last}",
        [r.key for r in mine],
        [Series(f"revenue ({currency})", [float(r.revenue) for r in mine])],
        kind="line" if by == "day" else "bar",
        y_label=f"revenue ({currency})",
        x_label=by,
    )


def sellers_chart(rows: Sequence[SellerRow], title: str) -> str:
    """Units sold per product, labelled by name."""
    return chart(
        title,
        [r.name or r.sku for r in rows],
        [Series("units", [float(r.units) for r in rows])],
        y_label="units sold",
        x_label="product",
    )


def stage_chart(rows: Sequence[StageTime], period: Period) -> str:
    """Median and 90th percentile of the time in each status that had stays, in a unit that
    suits the longest."""
    shown = [r for r in rows if r.stays]
    longest = max((r.p90_seconds or 0.0 for r in shown), default=0.0)
    unit, size = (
        ("hours", 3600)
        if longest >= 7200
        else ("minutes", 60)
        if longest >= 120
        else ("seconds", 1)
    )
    return chart(
        f"Time per stage, orders placed {period.first} to {period.last}",
        [r.status for r in shown],
        [
            Series("median", [(r.median_seconds or 0.0) / size for r in shown]),
            Series("90th percentile", [(r.p90_seconds or 0.0) / size for r in shown]),
        ],
        y_label=unit,
        x_label="status",
    )
