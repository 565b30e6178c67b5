"""Item 3: many orders at once for one SKU with little stock, against as many orders spread
over as many well-stocked SKUs.

Settled means every order knows its stock: it holds units (CONFIRMED or later) or waits for
them (BACKORDERED). PostgreSQL then tells how many units the hot SKU gave out; the orders
left waiting are cancelled so they do not load later items.
"""

from __future__ import annotations

from bench.perf_config import PerfConfig
from bench.perf_orders import (
    WAREHOUSE,
    Wave,
    call_all,
    hot_sku,
    order_body,
    place_and_watch,
    spread_sku,
)
from bench.perf_stack import PerfStack
from bench.perf_stats import Outcome, rate, ratio
from bench.perf_table import Table, Target, number
from bench.perf_watch import STOCK_DECIDED, ReadModel

RATIO_TARGET = 0.5


async def run_hot_sku(stack: PerfStack, cfg: PerfConfig, rm: ReadModel, repeat: int) -> Outcome:
    out = Outcome()
    n = cfg.hot_orders
    sku = hot_sku(repeat)
    async with stack.api(cfg.concurrency) as http:
        hot = await place_and_watch(
            http,
            rm,
            [order_body(i, sku) for i in range(n)],
            cfg.concurrency,
            f"hot-{repeat}",
            STOCK_DECIDED,
            cfg.timeout_seconds,
        )
        spread = await place_and_watch(
            http,
            rm,
            [order_body(i, spread_sku(repeat, i)) for i in range(n)],
            cfg.concurrency,
            f"spread-{repeat}",
            STOCK_DECIDED,
            cfg.timeout_seconds,
        )
        out.metrics.update(await _count(rm, sku, hot, cfg.hot_units))
        waiting = [o for o, s in hot.arrivals.status.items() if s == "BACKORDERED"]
        cancelled = await call_all(
            http, [("POST", f"/orders/{o}/cancel", {"reason": "benchmark"}) for o in waiting], 16
        )
    if cancelled < len(waiting):
        out.note(f"{len(waiting) - cancelled} backordered order(s) could not be cancelled")
    out.note("hot: " + hot.stragglers() if hot.stragglers() else "")
    out.note("spread: " + spread.stragglers() if spread.stragglers() else "")
    m = out.metrics
    m["orders"] = float(n)
    m["hot_settled"] = float(hot.arrived)
    m["hot_seconds"] = hot.seconds
    m["hot_per_s"] = rate(hot.arrived, hot.seconds)
    m["spread_settled"] = float(spread.arrived)
    m["spread_seconds"] = spread.seconds
    m["spread_per_s"] = rate(spread.arrived, spread.seconds)
    m["ratio"] = ratio(m["hot_per_s"], m["spread_per_s"])
    return out


async def _count(rm: ReadModel, sku: str, hot: Wave, units: int) -> dict[str, float]:
    """Units the SKU gave out (held or shipped), to how many orders, and what stock says."""
    [(given, holders)] = await rm.rows(
        "select coalesce(sum(quantity), 0), count(distinct order_id) from reservations"
        " where sku = %s",
        (sku,),
    )
    [(on_hand, reserved)] = await rm.rows(
        "select on_hand, reserved from stock where sku = %s and warehouse_id = %s",
        (sku, WAREHOUSE),
    )
    statuses = hot.arrivals.counts()
    backordered = statuses.get("BACKORDERED", 0)
    given_f = float(str(given))
    return {
        "units": float(units),
        "units_given": given_f,
        "holders": float(str(holders)),
        "oversold": max(0.0, given_f - units)
        + max(0.0, float(str(reserved)) - float(str(on_hand))),
        "backordered": float(backordered),
        "failed": float(sum(v for k, v in statuses.items() if k in ("FAILED", "CANCELLED"))),
    }


def tables(m: dict[str, float]) -> list[Table]:
    def s(k: str) -> str:
        return number(m.get(k, float("nan")), 2, "s")

    n = number(m.get("orders", float("nan")), 0)
    rows = [
        [
            f"1 SKU, {number(m.get('units', float('nan')), 0)} units",
            f"{number(m.get('hot_settled', float('nan')), 0)} / {n}",
            s("hot_seconds"),
            number(m.get("hot_per_s", float("nan")), 1),
        ],
        [
            f"{n} SKUs, well stocked",
            f"{number(m.get('spread_settled', float('nan')), 0)} / {n}",
            s("spread_seconds"),
            number(m.get("spread_per_s", float("nan")), 1),
        ],
    ]
    return [
        Table(
            "3. Hot SKU: orders until every one holds or waits for stock",
            ["orders on", "settled", "took", "per s"],
            rows,
            note=f"  hot / spread = {number(m.get('ratio', float('nan')), 3)}; hot SKU gave out "
            f"{number(m.get('units_given', float('nan')), 0)} units to "
            f"{number(m.get('holders', float('nan')), 0)} orders, "
            f"{number(m.get('backordered', float('nan')), 0)} backordered, "
            f"{number(m.get('failed', float('nan')), 0)} failed, "
            f"oversold {number(m.get('oversold', float('nan')), 0)}",
        )
    ]


def targets(m: dict[str, float]) -> list[Target]:
    nan = float("nan")
    return [
        Target(
            "hot SKU: units given out", m.get("units_given", nan), m.get("units", nan), "", "eq", 0
        ),
        Target("hot SKU: units oversold", m.get("oversold", nan), 0, "", "le", 0),
        Target("hot / spread throughput", m.get("ratio", nan), RATIO_TARGET, "", "ge", 2),
    ]
