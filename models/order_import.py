"""Reading order files from other channels (§1): CSV or JSON lines, into order requests.

JSON lines: one order per line, shaped like the body of `POST /orders`.
CSV: one line item per row; rows with the same channel and channel order id are one order, whose
order-level columns come from its first row. Columns:
channel, channel_order_id, customer_id, customer_name, customer_email, customer_phone,
ship_name, ship_line1, ship_line2, ship_city, ship_postal_code, ship_country, ship_phone,
payment_method, payment_token, allow_partial_shipment, delivery (standard or express; empty
is standard), notes, sku, quantity.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

REQUIRED_CSV = (
    "channel_order_id",
    "customer_id",
    "customer_name",
    "customer_email",
    "ship_name",
    "ship_line1",
    "ship_city",
    "ship_postal_code",
    "ship_country",
    "sku",
    "quantity",
)


@dataclass
class ImportRow:
    """One order read from the file (with the file lines it came from), or why it cannot be."""

    lines: list[int]
    order: dict[str, Any] | None = None
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def parse(text: str, fmt: str) -> list[ImportRow]:
    """The orders in a file's text; `fmt` is csv or jsonl."""
    if fmt == "jsonl":
        return parse_jsonl(text)
    if fmt == "csv":
        return parse_csv(text)
    raise ValueError(f"unknown import format {fmt!r}: csv or jsonl")


def parse_jsonl(text: str) -> list[ImportRow]:
    rows = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            order = json.loads(raw)
        except json.JSONDecodeError as exc:
            rows.append(ImportRow([n], error=f"not JSON: {exc.msg}"))
            continue
        if not isinstance(order, dict):
            rows.append(ImportRow([n], error="each line must be one JSON object"))
            continue
        if not order.get("channel_order_id"):
            rows.append(ImportRow([n], error="channel_order_id is required to import"))
            continue
        rows.append(ImportRow([n], order))
    return rows


def parse_csv(text: str) -> list[ImportRow]:
    # newline="": the csv module reads line endings itself, a lone "\r" included.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[ImportRow] = []
    try:
        _read_csv(reader, rows)
    except csv.Error as exc:
        # The rest of the file cannot be read; what was read stands.
        rows.append(ImportRow([reader.line_num], error=f"not CSV: {exc}"))
    return rows


def _read_csv(reader: csv.DictReader[str], rows: list[ImportRow]) -> None:
    missing = [c for c in REQUIRED_CSV if c not in (reader.fieldnames or [])]
    if missing:
        rows.append(ImportRow([1], error=f"missing columns: {', '.join(missing)}"))
        return
    orders: dict[tuple[str, str], ImportRow] = {}
    for n, rec in enumerate(reader, start=2):
        rec = {k: (v or "").strip() for k, v in rec.items() if k}
        empty = [c for c in REQUIRED_CSV if not rec.get(c)]
        if empty:
            rows.append(ImportRow([n], error=f"empty: {', '.join(empty)}"))
            continue
        try:
            quantity = int(rec["quantity"])
        except ValueError:
            rows.append(ImportRow([n], error=f"quantity {rec['quantity']!r} is not a number"))
            continue
        key = (rec.get("channel") or "import", rec["channel_order_id"])
        row = orders.get(key)
        if row is None:
            row = ImportRow([n], _order_from(rec, key[0]))
            orders[key] = row
            rows.append(row)
        else:
            row.lines.append(n)
        assert row.order is not None
        row.order["lines"].append({"sku": rec["sku"], "quantity": quantity})


def _order_from(rec: dict[str, str], channel: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "channel_order_id": rec["channel_order_id"],
        "customer": {
            "id": rec["customer_id"],
            "name": rec["customer_name"],
            "email": rec["customer_email"],
            "phone": rec.get("customer_phone", ""),
        },
        "ship_to": {
            "name": rec["ship_name"],
            "line1": rec["ship_line1"],
            "line2": rec.get("ship_line2", ""),
            "city": rec["ship_city"],
            "postal_code": rec["ship_postal_code"],
            "country": rec["ship_country"],
            "phone": rec.get("ship_phone", ""),
        },
        "payment": {
            "method": rec.get("payment_method") or "invoice",
            "token": rec.get("payment_token", ""),
        },
        "allow_partial_shipment": rec.get("allow_partial_shipment", "").lower()
        in ("1", "true", "yes"),
        "delivery": rec.get("delivery") or "standard",
        "notes": rec.get("notes", ""),
        "lines": [],
    }
