"""Request bodies of the inventory, supplier and purchase order routes (§7)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from api.schemas import IsoDateTime
from models.order import Email, Sku, Text

Ident = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Units = Annotated[int, Field(gt=0, le=1_000_000, strict=True)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _HasSku(Protocol):
    sku: str


L = TypeVar("L", bound=_HasSku)


def _unique_skus(lines: list[L]) -> list[L]:
    skus = [ln.sku for ln in lines]
    if len(set(skus)) != len(skus):
        raise ValueError("each SKU may appear once")
    return lines


class SafetyStockBody(_Body):
    safety_stock: Annotated[int, Field(ge=0, le=10_000_000, strict=True)]


class SupplierProductBody(_Body):
    sku: Sku
    unit_cost: Annotated[Decimal, Field(gt=0, le=Decimal("1000000"), decimal_places=2)]
    currency: Currency
    pack_size: Annotated[int, Field(gt=0, le=100_000, strict=True)] = 1
    preferred: StrictBool = False


class SupplierBody(_Body):
    name: Text
    email: Email
    lead_time_days: Annotated[int, Field(ge=0, le=365, strict=True)]
    active: StrictBool = True
    products: Annotated[list[SupplierProductBody], Field(max_length=1000)] = []

    _unique = field_validator("products")(_unique_skus)


class SkuUnits(_Body):
    sku: Sku
    quantity: Units


class PurchaseOrderCreate(_Body):
    supplier_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)
    ]
    warehouse_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)
    ]
    lines: Annotated[list[SkuUnits], Field(min_length=1, max_length=500)]

    _unique = field_validator("lines")(_unique_skus)


class PurchaseOrderConfirm(_Body):
    supplier_reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = (
        ""
    )
    expected_at: IsoDateTime | None = None


class GoodsReceipt(_Body):
    lines: Annotated[list[SkuUnits], Field(min_length=1, max_length=500)]

    _unique = field_validator("lines")(_unique_skus)


class PurchaseOrderCancel(_Body):
    reason: Note = ""


class ReplenishmentOrder(_Body):
    """Order what replenishment suggests, into one warehouse; defaults as the suggestions."""

    warehouse_id: Ident
    skus: Annotated[list[Sku], Field(max_length=500)] | None = None
    window_days: Annotated[int, Field(ge=1, le=365, strict=True)] | None = None
    review_days: Annotated[int, Field(ge=0, le=365, strict=True)] | None = None
