"""The report charts are well-formed SVG with their labels, every text escaped; no I/O."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

import pytest

from api import report_charts as charts
from api.report_charts import Series, chart, nice_ceiling
from api.routers.reports import duration
from models.order_flow_reports import StageTime
from models.reports import Period, share
from models.sales_reports import SalesRow, SellerRow

NS = "{http://www.w3.org/2000/svg}"
PERIOD = Period(date(2001, 3, 5), date(2001, 3, 14))


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    return root


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_bar_chart_has_title_axes_labels_and_one_bar_per_value() -> None:
    root = _parse(
        chart(
            "Units & more",
            ["tea", "cups"],
            [Series("2025", [3, 7]), Series("2026", [4, 1.5])],
            y_label="units",
            x_label="category",
        )
    )
    texts = _texts(root)
    assert "Units & more" in texts and "units" in texts and "category" in texts
    assert {"tea", "cups", "2025", "2026"} <= set(texts)
    assert root.find(f"{NS}title") is not None
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert len(bars) == 4
    # The axis runs to a round number above the largest value: 7 -> 10.
    assert "10" in texts and "0" in texts


def test_every_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    series = [Series(hostile, [1, 2]), Series("s", [0, 1])]
    svg = chart(hostile, [hostile, "b"], series, kind="line")
    assert "<script" not in svg
    root = _parse(svg)
    texts = _texts(root)
    assert hostile in texts  # the title, whole
    assert any(t.startswith("<script>alert") and t.endswith("…") for t in texts)  # a label
    titles = ["".join(t.itertext()) for t in root.iter(f"{NS}title")]
    assert any(t.startswith(hostile) for t in titles)


def test_line_chart_draws_a_point_per_label() -> None:
    root = _parse(chart("Revenue", ["d1", "d2", "d3"], [Series("USD", [1.5, 0, 4])], kind="line"))
    (line,) = list(root.iter(f"{NS}polyline"))
    assert len(line.attrib["points"].split()) == 3
    assert len(list(root.iter(f"{NS}circle"))) == 3


def test_empty_chart_says_so_and_crowded_axes_thin_their_labels() -> None:
    assert "no data in this period" in _texts(_parse(chart("Nothing", [], [Series("x", [])])))
    labels = [f"day {i}" for i in range(100)]
    root = _parse(chart("Many", labels, [Series("x", list(range(100)))], kind="line"))
    shown = [t for t in _texts(root) if t.startswith("day ")]
    assert shown[0] == "day 0" and 10 < len(shown) <= charts.MAX_X_LABELS


def test_series_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="has 1 values for 2"):
        chart("x", ["a", "b"], [Series("s", [1])])


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (1.5, 2), (2.2, 2.5), (420, 500), (1000, 1000)],
)
def test_nice_ceiling(value: float, top: float) -> None:
    assert nice_ceiling(value) == pytest.approx(top)


def _sale(key: str, currency: str, orders: int, revenue: str) -> SalesRow:
    return SalesRow(key=key, currency=currency, orders=orders, units=1, revenue=Decimal(revenue))


def test_sales_chart_keeps_to_one_currency() -> None:
    rows = [_sale("web", "USD", 2, "10.00"), _sale("web", "EUR", 3, "7.50")]
    assert charts.main_currency(rows) == "EUR"
    assert charts.main_currency([]) is None
    texts = _texts(_parse(charts.sales_chart(rows, "channel", "USD", PERIOD)))
    assert "Revenue by channel in USD, 2001-03-05 to 2001-03-14" in texts
    assert "revenue (USD)" in texts and "web" in texts


def test_stage_chart_picks_a_unit_and_leaves_out_empty_stages() -> None:
    rows = [
        StageTime(status="PLACED", stays=2, median_seconds=30.0, p90_seconds=90.0),
        StageTime(status="BACKORDERED", stays=0, median_seconds=None, p90_seconds=None),
        StageTime(status="SHIPPED", stays=1, median_seconds=600.0, p90_seconds=600.0),
    ]
    texts = _texts(_parse(charts.stage_chart(rows, PERIOD)))
    assert "minutes" in texts and "PLACED" in texts and "BACKORDERED" not in texts
    sellers = [SellerRow(sku="S-1", name="", category="c", units=3, orders=2)]
    assert "S-1" in _texts(_parse(charts.sellers_chart(sellers, "Best")))


def test_durations_and_shares_read_well() -> None:
    assert [duration(s) for s in (None, 12.34, 250, 5400, 200_000)] == [
        None,
        "12.3s",
        "4m 10s",
        "1h 30m",
        "2d 7h",
    ]
    assert share(2, 3) == Decimal("0.6667") and share(0, 0) == Decimal("0.0000")
    with pytest.raises(ValueError, match="starts"):
        Period(date(2001, 3, 2), date(2001, 3, 1))
    assert Period.ending(date(2001, 3, 30)).first == date(2001, 3, 1)
