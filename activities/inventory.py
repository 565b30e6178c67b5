"""Inventory and catalog activities: reserve, release and ship stock; price lines (PostgreSQL)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models import catalog_repo, inventory_repo, returns_repo
from models.order import DeliveryOption, LineInput, PricedOrder
from models.pricing import DeliveryNotOffered, PricingError, price_order

# The business errors pricing fails with: a delivery option the country lacks, and a line that
# cannot be priced (an unknown or inactive SKU).
DELIVERY_NOT_OFFERED = "DeliveryNotOffered"
PRICING_ERROR = "PricingError"


class ParcelRequest(BaseModel):
    warehouse_id: str | None = None
    lines: dict[str, int]


class ReserveInput(BaseModel):
    order_id: str
    lines: dict[str, int]
    ship_country: str = ""
    batch: int = 1
    # Orders since shipment splitting may take their units from several warehouses.
    split: bool = False
    partial: bool = False
    strategy: str = "fewest_shipments"
    # Parcels chosen by hand; their lines add up to `lines`.
    parcels: list[ParcelRequest] | None = None


class ShipInput(BaseModel):
    order_id: str
    batch: int = 1


class ReturnStockInput(BaseModel):
    return_id: str
    warehouse_id: str
    lines: dict[str, int]


class BackorderInput(BaseModel):
    order_id: str
    lines: dict[str, int]
    ship_country: str = ""
    batch: int = 1
    split: bool = False


class ParcelHeld(BaseModel):
    warehouse_id: str
    batch: int
    lines: dict[str, int]


class ReserveResult(BaseModel):
    ok: bool
    warehouse_id: str = ""
    shortages: list[dict[str, object]] = Field(default_factory=list)
    parcels: list[ParcelHeld] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class PriceInput(BaseModel):
    lines: list[LineInput]
    country: str
    promotion_code: str = ""
    delivery: DeliveryOption = DeliveryOption.STANDARD


class InventoryActivities:
    """Activities over our own PostgreSQL: stock and the catalog."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    @activity.defn(name="inventory.reserve")
    async def reserve(self, inp: ReserveInput) -> ReserveResult:
        """Hold exactly the given units for the order (all or nothing); empty releases all."""
        async with self.sessions.begin() as session:
            result = await inventory_repo.set_reservation(
                session,
                inp.order_id,
                inp.lines,
                inp.ship_country,
                inp.batch,
                split=inp.split,
                partial=inp.partial,
                strategy=inp.strategy,
                fixed=None
                if inp.parcels is None
                else [(p.warehouse_id, p.lines) for p in inp.parcels],
            )
        return ReserveResult(
            ok=result.ok,
            warehouse_id=result.warehouse_id,
            shortages=result.shortages,
            parcels=[ParcelHeld.model_validate(p) for p in result.parcels],
            reasons=result.reasons,
        )

    @activity.defn(name="inventory.ship")
    async def ship(self, order_id: str) -> int:
        """The held units left the warehouse: take them off on-hand stock."""
        async with self.sessions.begin() as session:
            return await inventory_repo.ship_reservation(session, order_id)

    @activity.defn(name="inventory.ship_batch")
    async def ship_batch(self, inp: ShipInput) -> int:
        """The held units of one shipment of the order left the warehouse."""
        async with self.sessions.begin() as session:
            return await inventory_repo.ship_reservation(session, inp.order_id, inp.batch)

    @activity.defn(name="inventory.release_batch")
    async def release_batch(self, inp: ShipInput) -> int:
        """One parcel of the order will not ship: its held units go back on the shelf."""
        async with self.sessions.begin() as session:
            return await inventory_repo.release_batch(session, inp.order_id, inp.batch)

    @activity.defn(name="inventory.backorder")
    async def backorder(self, inp: BackorderInput) -> None:
        """Queue the order for the next restock (or update what it waits for)."""
        async with self.sessions.begin() as session:
            await inventory_repo.add_backorder(
                session, inp.order_id, inp.lines, inp.ship_country, inp.batch, inp.split
            )

    @activity.defn(name="inventory.close_backorder")
    async def close_backorder(self, order_id: str) -> None:
        """Take the order out of the backorder queue."""
        async with self.sessions.begin() as session:
            await inventory_repo.close_backorder(session, order_id)

    @activity.defn(name="inventory.restock_return")
    async def restock_return(self, inp: ReturnStockInput) -> bool:
        """Put a return's sellable goods back on hand, once."""
        async with self.sessions.begin() as session:
            return await returns_repo.restock_return(
                session, inp.return_id, inp.warehouse_id, inp.lines
            )

    @activity.defn(name="catalog.price")
    async def price(self, inp: PriceInput) -> PricedOrder:
        """Price lines from the catalog; a line that cannot be priced, or a delivery option the
        country lacks, is a business refusal."""
        async with self.sessions() as session:
            catalog = await catalog_repo.load_catalog(session, [ln.sku for ln in inp.lines])
            rules = await catalog_repo.load_rules(session, inp.country, inp.promotion_code)
        try:
            return price_order(inp.lines, catalog, rules, inp.delivery)
        except PricingError as exc:
            raise ApplicationError(
                str(exc), {"lines": exc.details}, type=PRICING_ERROR, non_retryable=True
            ) from exc
        except DeliveryNotOffered as exc:
            raise ApplicationError(str(exc), type=DELIVERY_NOT_OFFERED, non_retryable=True) from exc
