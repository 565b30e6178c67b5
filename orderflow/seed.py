"""The demo catalog: SKUs, two warehouses with stock, customers, pricing rules, suppliers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.dialects.postgresql import insert

from models.supply_tables import Supplier, SupplierProduct
from models.tables import (
    Customer,
    Product,
    Promotion,
    ShippingRate,
    Stock,
    TaxRate,
    Warehouse,
)
from orderflow.db import sqlalchemy_url

CURRENCY = "USD"

WAREHOUSES = [
    {"id": "WH-SHA", "name": "Shanghai fulfilment centre", "country": "CN", "priority": 10},
    {"id": "WH-RTM", "name": "Rotterdam fulfilment centre", "country": "NL", "priority": 20},
]

# (sku, name, variant, category, price)
PRODUCTS: list[tuple[str, str, str, str, str]] = [
    ("SKU-TEA-001", "Longjing green tea", "100 g tin", "tea", "18.50"),
    ("SKU-TEA-002", "Tieguanyin oolong", "100 g tin", "tea", "22.00"),
    ("SKU-TEA-003", "Pu-erh cake", "357 g", "tea", "39.90"),
    ("SKU-TEA-004", "Jasmine pearls", "50 g", "tea", "14.75"),
    ("SKU-TEA-005", "Keemun black tea", "100 g", "tea", "16.20"),
    ("SKU-CUP-001", "Celadon tea cup", "set of 2", "teaware", "24.00"),
    ("SKU-CUP-002", "Glass gaiwan", "150 ml", "teaware", "19.90"),
    ("SKU-POT-001", "Yixing clay teapot", "200 ml", "teaware", "89.00"),
    ("SKU-POT-002", "Cast iron kettle", "0.8 l", "teaware", "64.50"),
    ("SKU-TRY-001", "Bamboo tea tray", "40 x 25 cm", "teaware", "45.00"),
    ("SKU-ACC-001", "Tea strainer", "stainless", "accessories", "6.90"),
    ("SKU-ACC-002", "Tea scoop", "bamboo", "accessories", "4.50"),
    ("SKU-ACC-003", "Tea towel", "linen", "accessories", "9.00"),
    ("SKU-ACC-004", "Tea timer", "sand, 3 min", "accessories", "7.80"),
    ("SKU-ACC-005", "Storage canister", "tin, 250 g", "accessories", "12.00"),
    ("SKU-SNK-001", "Almond cookies", "200 g", "snacks", "5.60"),
    ("SKU-SNK-002", "Mooncake box", "4 pieces", "snacks", "28.00"),
    ("SKU-SNK-003", "Dried plums", "150 g", "snacks", "6.40"),
    ("SKU-GFT-001", "Tea tasting gift set", "6 teas", "gifts", "49.00"),
    ("SKU-GFT-002", "Teaware gift box", "pot and 2 cups", "gifts", "119.00"),
    ("SKU-GFT-003", "Gift card", "50 USD", "gifts", "50.00"),
    ("SKU-BOK-001", "The way of tea", "hardcover", "books", "32.00"),
]

CUSTOMERS = [
    {"id": "C-1001", "name": "Li Lei", "email": "li@example.com", "phone": "+86 138 0000 0000"},
    {
        "id": "C-1002",
        "name": "Han Meimei",
        "email": "han@example.com",
        "phone": "+86 139 0000 0000",
    },
    {
        "id": "C-1003",
        "name": "Anna de Vries",
        "email": "anna@example.nl",
        "phone": "+31 6 0000 0000",
    },
    {"id": "C-1004", "name": "Sam Carter", "email": "sam@example.com", "phone": "+1 555 0100"},
]

# Express is offered where express_fee is set (migration 0012 sets the same fees on rows an
# earlier seed wrote).
SHIPPING = [
    {
        "country": "CN",
        "fee": Decimal("5.00"),
        "free_over": Decimal("99.00"),
        "express_fee": Decimal("15.00"),
    },
    {
        "country": "NL",
        "fee": Decimal("7.50"),
        "free_over": Decimal("150.00"),
        "express_fee": Decimal("19.50"),
    },
    {"country": "**", "fee": Decimal("15.00"), "free_over": None, "express_fee": None},
]
TAXES = [
    {"country": "CN", "rate": Decimal("0.1300")},
    {"country": "NL", "rate": Decimal("0.2100")},
    {"country": "**", "rate": Decimal("0.0000")},
]
PROMOTIONS = [
    {
        "code": "WELCOME10",
        "percent_off": Decimal("10"),
        "min_subtotal": Decimal("0"),
        "active": True,
    },
    {"code": "BIG20", "percent_off": Decimal("20"), "min_subtotal": Decimal("200"), "active": True},
]


# Staff are alerted below this many units of a SKU across both warehouses.
SAFETY_STOCK = 30

SUPPLIERS = [
    {
        "id": "SUP-HZTEA",
        "name": "Hangzhou Tea Garden Co.",
        "email": "orders@hztea.example",
        "lead_time_days": 10,
        "active": True,
    },
    {
        "id": "SUP-JDZ",
        "name": "Jingdezhen Ceramics Works",
        "email": "sales@jdz-ceramics.example",
        "lead_time_days": 21,
        "active": True,
    },
]
# Who sells us which category, in what pack size.
SUPPLIED = {
    "tea": ("SUP-HZTEA", 12),
    "snacks": ("SUP-HZTEA", 24),
    "gifts": ("SUP-HZTEA", 6),
    "teaware": ("SUP-JDZ", 4),
    "accessories": ("SUP-JDZ", 10),
}


def _supplier_products() -> list[dict[str, Any]]:
    """Each SKU of a supplied category, bought at 45% of its price."""
    return [
        {
            "supplier_id": SUPPLIED[category][0],
            "sku": sku,
            "unit_cost": (Decimal(price) * Decimal("0.45")).quantize(Decimal("0.01")),
            "currency": CURRENCY,
            "pack_size": SUPPLIED[category][1],
            "preferred": True,
        }
        for sku, _name, _variant, category, price in PRODUCTS
        if category in SUPPLIED
    ]


def _stock_rows() -> list[dict[str, Any]]:
    rows = []
    for i, (sku, *_rest) in enumerate(PRODUCTS):
        rows.append({"sku": sku, "warehouse_id": "WH-SHA", "on_hand": 200 + 10 * i, "reserved": 0})
        # Rotterdam carries most, not all, of the range: some orders must come from Shanghai.
        if i % 4 != 3:
            rows.append(
                {"sku": sku, "warehouse_id": "WH-RTM", "on_hand": 80 + 5 * i, "reserved": 0}
            )
    return rows


def seed(url: str) -> None:
    """Insert the demo data; rows that exist are left alone, so stock survives restarts."""
    engine = create_engine(sqlalchemy_url(url))
    products = [
        {
            "sku": sku,
            "name": name,
            "variant": variant,
            "category": category,
            "unit_price": Decimal(price),
            "currency": CURRENCY,
            "active": True,
            "safety_stock": SAFETY_STOCK,
        }
        for sku, name, variant, category, price in PRODUCTS
    ]
    with engine.begin() as conn:
        for table, rows in (
            (Warehouse, WAREHOUSES),
            (Product, products),
            (Stock, _stock_rows()),
            (Customer, CUSTOMERS),
            (ShippingRate, SHIPPING),
            (TaxRate, TAXES),
            (Promotion, PROMOTIONS),
            (Supplier, SUPPLIERS),
            (SupplierProduct, _supplier_products()),
        ):
            conn.execute(insert(table).values(rows).on_conflict_do_nothing())
    engine.dispose()
