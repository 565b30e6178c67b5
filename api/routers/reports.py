"""Reports (§8) from the read model: JSON per report, SVG charts, and one HTML page.

Every report covers whole UTC days `from` to `to` (both included; default the last 30 days)
and counts orders by the day they were placed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api import report_charts as charts
from api.deps import SessionDep
from api.errors import ApiError
from api.schemas import IsoDate
from models import customer_reports as customers
from models import order_flow_reports as flow
from models import sales_reports as sales
from models.reports import DEFAULT_DAYS, Period

router = APIRouter(prefix="/reports", tags=["reports"])

REPORTS = (
    "sales",
    "best-sellers",
    "slow-sellers",
    "stage-times",
    "rates",
    "repeat-purchases",
    "preferences",
    "bought-together",
    "inventory-turnover",
)
# Far enough apart for any real question, near enough that day arithmetic never overflows.
EARLIEST, LATEST = date(1970, 1, 1), date(9000, 12, 31)
SVG = "image/svg+xml"
_pages = Environment(loader=PackageLoader("api"), autoescape=True)


def get_period(
    first: Annotated[
        IsoDate | None,
        Query(alias="from", description="first day (UTC, YYYY-MM-DD); default: 29 days before"),
    ] = None,
    last: Annotated[
        IsoDate | None, Query(alias="to", description="last day, included (UTC); default: today")
    ] = None,
) -> Period:
    """The period a report covers, from the `from` and `to` parameters."""
    last = last or datetime.now(UTC).date()
    for name, day in (("from", first), ("to", last)):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise ApiError(422, "bad_period", f"{name}={day} lies outside {EARLIEST} to {LATEST}")
    if first is None:
        return Period.ending(last, DEFAULT_DAYS)
    if first > last:
        raise ApiError(422, "bad_period", f"from={first} comes after to={last}")
    return Period(first, last)


PeriodDep = Annotated[Period, Depends(get_period)]
Limit = Annotated[int, Query(ge=1, le=100, description="how many rows, 1 to 100")]
Category = Annotated[str | None, Query(max_length=100, description="only this category")]
SalesBy = Annotated[
    Literal["day", "week", "product", "category", "channel"],
    Query(description="day, ISO week, product (SKU), category or channel"),
]


def _report(name: str, period: Period, **fields: Any) -> dict[str, Any]:
    return {"report": name, "from": period.first.isoformat(), "to": period.last.isoformat()} | {
        k: _json(v) for k, v in fields.items()
    }


def _json(value: Any) -> Any:
    # Money and shares go out as decimal strings, as everywhere in the API.
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_json(v) for v in value]
    return str(value) if isinstance(value, Decimal) else value


def _svg(text: str) -> Response:
    return Response(text, media_type=SVG)


@dataclass
class Table:
    """A table of the report page; cells from column `numeric_from` on align right."""

    title: str
    header: list[str]
    rows: list[list[Any]]
    numeric_from: int = 1


def duration(seconds: float | None) -> str | None:
    """Seconds as a person reads them: 2d 3h, 1h 30m, 4m 10s, 12.5s."""
    if seconds is None:
        return None
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def _sales_table(title: str, rows: list[sales.SalesRow], charged: bool) -> Table:
    header = ["", "currency", "orders", "units", "revenue"] + (["charged"] if charged else [])
    return Table(
        title,
        header,
        [
            [r.key, r.currency, r.orders, r.units, r.revenue, *([r.order_total] if charged else [])]
            for r in rows
        ],
        2,
    )


def _sellers_table(title: str, rows: list[sales.SellerRow]) -> Table:
    return Table(
        title,
        ["SKU", "product", "category", "units", "orders"],
        [[r.sku, r.name, r.category, r.units, r.orders] for r in rows],
        3,
    )


def _choices_table(title: str, rows: list[customers.Preference], units: bool = False) -> Table:
    header = ["", "orders", "share"] + (["units"] if units else [])
    return Table(
        title,
        header,
        [[p.value, p.orders, p.share, *([p.units] if units else [])] for p in rows],
    )


async def _page(session: AsyncSession, period: Period) -> tuple[list[Table], list[Table], set[str]]:
    """The page's key figures, its other tables, and the currencies sold in."""
    by_day = await sales.sales_by(session, period, "day")
    rates = await flow.outcome_rates(session, period)
    repeat = await customers.repeat_purchases(session, period)
    prefs = await customers.preferences(session, period)
    figures = [
        Table(
            f"Outcomes of the {rates.placed} orders placed",
            ["outcome", "orders", "share"],
            [[o.outcome, o.orders, o.share] for o in rates.outcomes],
        ),
        Table(
            "Repeat purchases",
            ["customers with a sale", "with two or more", "sales", "rate"],
            [[repeat.customers, repeat.repeat_customers, repeat.orders, repeat.rate]],
            0,
        ),
    ]
    stages = await flow.stage_times(session, period)
    pairs = await sales.bought_together(session, period, 10)
    turnover = await flow.inventory_turnover(session, period, 10)
    tables = [
        _sales_table("Sales by day", by_day, True),
        _sales_table("Sales by channel", await sales.sales_by(session, period, "channel"), True),
        _sales_table("Sales by category", await sales.sales_by(session, period, "category"), False),
        _sellers_table("Best sellers", await sales.best_sellers(session, period, 10)),
        _sellers_table("Slow sellers", await sales.slow_sellers(session, period, 10)),
        Table(
            "Time per stage",
            ["status", "stays", "median", "90th percentile"],
            [
                [r.status, r.stays, duration(r.median_seconds), duration(r.p90_seconds)]
                for r in stages
            ],
        ),
        _choices_table("Categories bought", prefs.category, units=True),
        _choices_table("Payment methods", prefs.payment_method),
        _choices_table("Delivery options", prefs.delivery_option),
        _choices_table("Ship-to countries", prefs.ship_to_country),
        Table(
            "Bought together",
            ["SKU", "product", "SKU", "product", "orders"],
            [[p.first, p.first_name, p.second, p.second_name, p.orders] for p in pairs],
            4,
        ),
        Table(
            "Inventory turnover (units shipped / units on hand now)",
            ["SKU", "product", "shipped", "on hand", "turnover"],
            [[t.sku, t.name, t.units_shipped, t.on_hand, t.turnover] for t in turnover],
            2,
        ),
    ]
    return figures, tables, {r.currency for r in by_day}


@router.get("", response_class=HTMLResponse)
async def report_page(request: Request, session: SessionDep, period: PeriodDep) -> HTMLResponse:
    """The key figures of the period as tables, with the charts."""
    span = {"from": period.first.isoformat(), "to": period.last.isoformat()}

    def chart(route: str, **params: str) -> str:
        return str(request.url_for(route).include_query_params(**span, **params))

    figures, tables, currencies = await _page(session, period)
    charts = [chart("sales_chart", by="day", currency=c) for c in sorted(currencies)]
    charts += [chart("best_sellers_chart"), chart("stage_times_chart")]
    html = _pages.get_template("report.html").render(
        period=period, figures=figures, tables=tables, charts=charts
    )
    return HTMLResponse(html)


@router.get("/sales")
async def sales_report(
    session: SessionDep, period: PeriodDep, by: SalesBy = "day"
) -> dict[str, Any]:
    """Sales per group and currency: `orders`, `units`, `revenue` (the goods at the price
    charged, before discount, shipping and tax) and, for day, week and channel, `order_total`
    (what customers were charged). Sales are orders in CONFIRMED or a later status of the main
    path, or with a return; cancelled, failed and refunded orders are not."""
    return _report("sales", period, by=by, rows=await sales.sales_by(session, period, by))


@router.get("/sales.svg", response_class=Response, responses={200: {"content": {SVG: {}}}})
async def sales_chart(
    session: SessionDep,
    period: PeriodDep,
    by: SalesBy = "day",
    currency: Annotated[
        str | None,
        Query(pattern="^[A-Z]{3}$", description="default: the currency of the most orders"),
    ] = None,
) -> Response:
    """Revenue in one currency by day (a line) or by week, product, category or channel."""
    rows = await sales.sales_by(session, period, by)
    cur = currency or charts.main_currency(rows) or "USD"
    return _svg(charts.sales_chart(rows, by, cur, period))


@router.get("/best-sellers")
async def best_sellers(
    session: SessionDep, period: PeriodDep, limit: Limit = 10, category: Category = None
) -> dict[str, Any]:
    """The products that sold the most units, ties by SKU."""
    rows = await sales.best_sellers(session, period, limit, category)
    return _report("best-sellers", period, limit=limit, category=category, rows=rows)


@router.get("/best-sellers.svg", response_class=Response, responses={200: {"content": {SVG: {}}}})
async def best_sellers_chart(
    session: SessionDep, period: PeriodDep, limit: Limit = 10, category: Category = None
) -> Response:
    """Units sold by the best sellers."""
    rows = await sales.best_sellers(session, period, limit, category)
    return _svg(charts.sellers_chart(rows, f"Best sellers, {period.first} to {period.last}"))


@router.get("/slow-sellers")
async def slow_sellers(
    session: SessionDep, period: PeriodDep, limit: Limit = 10, category: Category = None
) -> dict[str, Any]:
    """The active products that sold the fewest units, those that sold none first."""
    rows = await sales.slow_sellers(session, period, limit, category)
    return _report("slow-sellers", period, limit=limit, category=category, rows=rows)


@router.get("/stage-times")
async def stage_times(session: SessionDep, period: PeriodDep) -> dict[str, Any]:
    """For orders placed in the period, per main-path status: the stays that ended (from
    entering the status to the next change), their median and 90th percentile in seconds."""
    return _report("stage-times", period, rows=await flow.stage_times(session, period))


@router.get("/stage-times.svg", response_class=Response, responses={200: {"content": {SVG: {}}}})
async def stage_times_chart(session: SessionDep, period: PeriodDep) -> Response:
    """Median and 90th percentile of the time per stage."""
    return _svg(charts.stage_chart(await flow.stage_times(session, period), period))


@router.get("/rates")
async def rates(session: SessionDep, period: PeriodDep) -> dict[str, Any]:
    """Of the orders placed in the period, how many (and what share) are now completed,
    cancelled or failed, and how many have a return."""
    result = await flow.outcome_rates(session, period)
    return _report("rates", period, placed=result.placed, rows=result.outcomes)


@router.get("/repeat-purchases")
async def repeat_purchases(session: SessionDep, period: PeriodDep) -> dict[str, Any]:
    """Of the customers with a sale placed in the period, the share with two or more sales
    placed in the same period."""
    result = await customers.repeat_purchases(session, period)
    return _report("repeat-purchases", period, **dict(result))


@router.get("/preferences")
async def preferences(session: SessionDep, period: PeriodDep) -> dict[str, Any]:
    """Over the period's sales: categories, payment methods, delivery options (standard or
    express) and ship-to countries, each with its orders and share of orders."""
    return _report("preferences", period, **dict(await customers.preferences(session, period)))


@router.get("/bought-together")
async def bought_together(
    session: SessionDep, period: PeriodDep, limit: Limit = 10
) -> dict[str, Any]:
    """Pairs of SKUs found in the same sales, with how many orders had both."""
    rows = await sales.bought_together(session, period, limit)
    return _report("bought-together", period, limit=limit, rows=rows)


@router.get("/inventory-turnover")
async def inventory_turnover(
    session: SessionDep, period: PeriodDep, limit: Limit = 20, category: Category = None
) -> dict[str, Any]:
    """Per SKU: units shipped in the period divided by the units on hand now (no stock history
    is kept, so today's on-hand stands for the average stock), highest first."""
    rows = await flow.inventory_turnover(session, period, limit, category)
    return _report("inventory-turnover", period, limit=limit, category=category, rows=rows)


@router.get("/{name}", include_in_schema=False)
async def unknown_report(name: str) -> None:
    """Any other name: say which reports there are."""
    raise ApiError(404, "unknown_report", f"no report {name!r}; reports: {', '.join(REPORTS)}")
