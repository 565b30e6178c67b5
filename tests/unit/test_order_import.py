"""Reading order files (§1): CSV rows grouped into orders, JSON lines, and what is refused."""

from __future__ import annotations

import pytest

from models.order_import import parse

HEADER = (
    "channel,channel_order_id,customer_id,customer_name,customer_email,ship_name,ship_line1,"
    "ship_city,ship_postal_code,ship_country,payment_method,sku,quantity\n"
)


def _row(oid: str, sku: str, qty: str, channel: str = "marketplace") -> str:
    return (
        f"{channel},{oid},C-1,Li Lei,li@example.com,Li Lei,1 Road,Shanghai,200001,CN,"
        f"invoice,{sku},{qty}\n"
    )


def test_csv_rows_of_one_channel_order_make_one_order() -> None:
    text = (
        HEADER + _row("A-1", "SKU-1", "2") + _row("A-2", "SKU-2", "1") + _row("A-1", "SKU-3", "1")
    )
    rows = parse(text, "csv")
    assert [r.lines for r in rows] == [[2, 4], [3]]
    first = rows[0].order
    assert first is not None
    assert first["lines"] == [{"sku": "SKU-1", "quantity": 2}, {"sku": "SKU-3", "quantity": 1}]
    assert first["channel"] == "marketplace" and first["channel_order_id"] == "A-1"
    assert first["payment"] == {"method": "invoice", "token": ""}
    assert first["delivery"] == "standard"


def test_csv_delivery_column_is_optional() -> None:
    header = HEADER.replace(",sku,", ",delivery,sku,")
    row = _row("A-1", "SKU-1", "1").replace(",invoice,", ",invoice,express,")
    (parsed,) = parse(header + row, "csv")
    assert parsed.order is not None and parsed.order["delivery"] == "express"


def test_csv_refusals_name_the_line_and_the_reason() -> None:
    text = HEADER + _row("A-1", "SKU-1", "two") + _row("", "SKU-1", "1")
    rows = parse(text, "csv")
    assert [(r.lines, r.error) for r in rows] == [
        ([2], "quantity 'two' is not a number"),
        ([3], "empty: channel_order_id"),
    ]
    (only,) = parse("sku,quantity\nSKU-1,1\n", "csv")
    assert only.error.startswith("missing columns: channel_order_id")


def test_jsonl_one_order_per_line() -> None:
    text = '{"channel_order_id": "X-1", "lines": []}\n\nnot json\n[1]\n{"lines": []}\n'
    rows = parse(text, "jsonl")
    assert [(r.lines, bool(r.order), r.error.split(":")[0]) for r in rows] == [
        ([1], True, ""),
        ([3], False, "not JSON"),
        ([4], False, "each line must be one JSON object"),
        ([5], False, "channel_order_id is required to import"),
    ]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="csv or jsonl"):
        parse("", "xml")
