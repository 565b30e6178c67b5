"""Which warehouse ships which units of an order (§4): plain rules, no I/O.

Strategies (a setting):
- `fewest_shipments` (default): one warehouse that can ship everything, nearest to the ship-to
  country first; else the smallest set of warehouses that covers the order; ties by the same
  ranking (nearest, then warehouse priority, then id).
- `nearest_first`: fill each line from the warehouses in ranking order, however many parcels
  that makes; a cheaper-to-ship rule for operations that prefer speed over fewer parcels.

Warehouses an order already holds stock in rank first, so re-allocating an order (a retry, an
edit) keeps what it has where it can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

STRATEGIES = ("fewest_shipments", "nearest_first")
# Above this many warehouses an exhaustive search of sets is too slow; fall back to greedy.
EXHAUSTIVE_LIMIT = 12


@dataclass(frozen=True)
class WarehouseInfo:
    """What ranking needs to know about a warehouse."""

    id: str
    country: str
    priority: int


@dataclass
class Parcel:
    """The units one warehouse ships."""

    warehouse_id: str
    lines: dict[str, int]


@dataclass
class Allocation:
    """Parcels that cover the order (or the part that can ship now) and what is short."""

    parcels: list[Parcel] = field(default_factory=list)
    short: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.parcels) and not self.short


def rank(
    warehouses: Sequence[WarehouseInfo], ship_country: str, current: Sequence[str] = ()
) -> list[WarehouseInfo]:
    """Warehouses in preference order: already holding the order, nearest, priority, id."""
    return sorted(
        warehouses,
        key=lambda w: (w.id not in current, w.country != ship_country, w.priority, w.id),
    )


def _covers(
    ws: Sequence[WarehouseInfo],
    free: Mapping[str, Mapping[str, int]],
    wanted: Mapping[str, int],
) -> bool:
    return all(sum(free.get(w.id, {}).get(sku, 0) for w in ws) >= q for sku, q in wanted.items())


def _fill(
    ws: Sequence[WarehouseInfo], free: Mapping[str, Mapping[str, int]], wanted: Mapping[str, int]
) -> tuple[list[Parcel], dict[str, int]]:
    """Take each line from the warehouses in order; what none has is short."""
    taken: dict[str, dict[str, int]] = {}
    short: dict[str, int] = {}
    for sku, qty in sorted(wanted.items()):
        left = qty
        for w in ws:
            n = min(left, free.get(w.id, {}).get(sku, 0))
            if n > 0:
                taken.setdefault(w.id, {})[sku] = n
                left -= n
            if left == 0:
                break
        if left:
            short[sku] = left
    parcels = [Parcel(w.id, taken[w.id]) for w in ws if w.id in taken]
    return parcels, short


def _why(w: WarehouseInfo, ship_country: str) -> str:
    near = f"in {w.country}, the ship-to country" if w.country == ship_country else w.country
    return f"{w.id} ({near}, priority {w.priority})"


def allocate(
    wanted: Mapping[str, int],
    free: Mapping[str, Mapping[str, int]],
    warehouses: Sequence[WarehouseInfo],
    ship_country: str,
    *,
    strategy: str = "fewest_shipments",
    split: bool = True,
    partial: bool = False,
    current: Sequence[str] = (),
) -> Allocation:
    """Allocate `wanted` units from `free` stock (warehouse -> SKU -> units).

    `split` allows several parcels; `partial` allows shipping what there is now and leaving
    the rest short (to wait for a restock). Without `partial` an order that cannot be covered
    gets no parcels, only what is short.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown allocation strategy {strategy!r}; one of {STRATEGIES}")
    wanted = {sku: q for sku, q in wanted.items() if q > 0}
    ranked = rank(warehouses, ship_country, current)
    if not wanted:
        return Allocation()

    if strategy == "fewest_shipments" or not split:
        for w in ranked:
            if _covers([w], free, wanted):
                return Allocation(
                    [Parcel(w.id, dict(wanted))],
                    reasons=[f"one parcel: {_why(w, ship_country)} holds every line"],
                )
    if split and strategy == "fewest_shipments" and len(ranked) <= EXHAUSTIVE_LIMIT:
        # Combinations come in ranking order, so the first covering set is the preferred one.
        for k in range(2, len(ranked) + 1):
            for ws in combinations(ranked, k):
                if _covers(ws, free, wanted):
                    parcels, _ = _fill(ws, free, wanted)
                    return Allocation(
                        parcels,
                        reasons=[
                            f"no single warehouse holds every line; {len(parcels)} parcels from "
                            + ", ".join(_why(w, ship_country) for w in ws)
                        ],
                    )
    if split:
        parcels, short = _fill(ranked, free, wanted)
        if not short:
            return Allocation(
                parcels,
                reasons=[
                    f"{len(parcels)} parcel(s), each line from the first warehouse that has it: "
                    + ", ".join(p.warehouse_id for p in parcels)
                ],
            )
        if partial and parcels:
            return Allocation(
                parcels,
                short,
                [
                    "part now, part after a restock: "
                    + ", ".join(
                        f"{p.warehouse_id} ships {sum(p.lines.values())} unit(s)" for p in parcels
                    )
                    + "; waiting for "
                    + ", ".join(f"{q} x {sku}" for sku, q in sorted(short.items()))
                ],
            )
    return Allocation(short=shortfall(wanted, free, split))


def shortfall(
    wanted: Mapping[str, int], free: Mapping[str, Mapping[str, int]], split: bool
) -> dict[str, int]:
    """Units missing per SKU: against all warehouses together, or the best single one."""
    short: dict[str, int] = {}
    for sku, qty in wanted.items():
        per_wh = [stock.get(sku, 0) for stock in free.values()]
        have = sum(per_wh) if split else max(per_wh, default=0)
        if have < qty:
            short[sku] = qty - have
    return short


def allocate_fixed(
    parcels: Sequence[tuple[str | None, Mapping[str, int]]],
    free: Mapping[str, Mapping[str, int]],
    warehouses: Sequence[WarehouseInfo],
    ship_country: str,
    current: Sequence[str] = (),
) -> Allocation:
    """Parcels staff chose by hand: each from its named warehouse, or the best single one.

    Each parcel takes its units before the next looks, so two parcels never count the same
    stock; one that cannot be filled makes the whole split short.
    """
    left = {wh: dict(stock) for wh, stock in free.items()}
    ranked = rank(warehouses, ship_country, current)
    found = Allocation()
    for i, (wanted_wh, lines) in enumerate(parcels, start=1):
        # An unknown warehouse has no stock: the parcel comes out short.
        candidates = [w for w in ranked if wanted_wh in (None, w.id)]
        chosen = next((w for w in candidates if _covers([w], left, lines)), None)
        if chosen is None:
            short = shortfall(lines, {w.id: left.get(w.id, {}) for w in candidates}, False)
            for sku, n in short.items():
                found.short[sku] = found.short.get(sku, 0) + n
            continue
        for sku, q in lines.items():
            left[chosen.id][sku] -= q
        found.parcels.append(Parcel(chosen.id, dict(lines)))
        found.reasons.append(f"parcel {i} split by hand: {_why(chosen, ship_country)}")
    if found.short:
        found.parcels = []
    return found
