"""Hostile input (§10): oversize and deeply nested bodies, odd unicode, out-of-range numbers, and
SQL, shell and HTML metacharacters get a 4xx, or are kept exactly as sent and shown escaped;
never a 500, never a half-written order."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from markupsafe import escape
from pypdf import PdfReader
from sqlalchemy import text

from models.api_keys import Role
from tests.integration.helpers import eventually, order_body, place, wait_status

SQL = "'; DROP TABLE orders; --"
SHELL = "$(rm -rf /)"
SCRIPT = "<script>alert(1)</script>"
HOSTILE = f"{SQL} {SHELL} {SCRIPT}"
UNICODE = {
    "emoji": "Zoë 🚀 👩🏽‍🚀 🇨🇳",
    "rtl": "שלום عليكم \u202eevil\u202c ok",
    "combining": "e\u0301 Z\u0337\u0327a\u0338l\u0336g\u0337o \u20dd",
}


def _hostile_order(tag: str) -> dict[str, Any]:
    """An order with the metacharacters in every free text field it has."""
    address = {
        "name": f"{HOSTILE} {tag}",
        "line1": HOSTILE,
        "line2": f"{SHELL} `id` | cat /etc/passwd",
        "city": f"{SCRIPT}&amp;",
        "postal_code": "'--$(x)<b>",
        "country": "CN",
        "phone": f"+86 {SQL}",
    }
    return order_body(
        customer_id=f"C-{tag}-{SQL}",
        customer={
            "id": f"C-{tag}-{SQL}",
            "name": f"{HOSTILE} {tag}",
            # No whitespace in an address; the rest goes.
            "email": "o'brien+$(id)<b>%00@example.com",
            "phone": f"{SHELL};{SQL}",
        },
        ship_to=address,
        bill_to={**address, "line1": f"{SCRIPT} bill"},
        channel_order_id=f"{SQL}-{tag}",
        notes=f'{HOSTILE}\n"quoted" \\ backslash {{{{ jinja }}}} {{% raw %}}',
    )


@pytest.fixture
async def api(make_stack: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An API without a worker: refusals come before anything would run."""
    stack = await make_stack(start_worker=False)
    yield stack.api


async def test_oversize_body_is_413(make_stack: Any) -> None:
    stack = await make_stack(start_worker=False)
    limit = stack.settings.max_body_bytes
    big = order_body(notes="x" * limit)
    r = await stack.api.post("/orders", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    # Streamed without a Content-Length, so only counting the bytes finds it.
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(limit // 1024 + 2):
            yield b" " * 1024

    r = await stack.api.post(
        "/orders", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.text
    r = await stack.api.post("/imports", content=b"a,b\n" * (limit // 4 + 1))
    assert r.status_code == 413


async def test_deeply_nested_json_is_400(api: httpx.AsyncClient) -> None:
    depth = 20_000
    deep = "[" * depth + "]" * depth
    for route, body in (
        ("/orders", '{"notes": ' + deep + "}"),
        ("/orders", deep),
        (
            "/orders/SO-1/cancel",
            '{"reason": ' + '{"a":' * (depth // 3) + "1" + "}" * (depth // 3) + "}",
        ),
    ):
        r = await api.post(route, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (route, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "malformed_json"
    r = await api.post("/imports", params={"format": "jsonl"}, content=deep)
    assert r.status_code == 400, r.text[:200]


async def test_unreadable_import_files_are_answered_row_by_row(make_stack: Any) -> None:
    # A larger body limit, so that one field can outgrow what the csv module reads.
    stack = await make_stack(start_worker=False, max_body_bytes=400_000)
    header = "channel_order_id,customer_id,customer_name,customer_email,ship_name,ship_line1,"
    header += "ship_city,ship_postal_code,ship_country,sku,quantity\n"
    for file in ("\r0", header + '"' + "x" * 200_000 + '",1\n'):
        r = await stack.api.post("/imports", params={"format": "csv"}, content=file.encode())
        assert r.status_code == 200, r.text[:300]
        assert r.json()["created"] == 0 and r.json()["rejected"] >= 1


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("customer", "name"), -1),
        (("customer", "name"), 10**30),
        (("lines", 0, "quantity"), -1),
        (("lines", 0, "quantity"), 0),
        (("lines", 0, "quantity"), 10**6),
        (("lines", 0, "quantity"), 10**30),
        (("lines", 0, "quantity"), 2.5),
        (("lines", 0, "quantity"), "2"),
        (("lines", 0, "quantity"), True),
        (("lines",), []),
        (("lines",), [{"sku": "SKU-TEA-001", "quantity": 1}] * 201),
        (("allow_partial_shipment",), "yes"),
    ],
)
async def test_out_of_range_order_fields_are_422(
    api: httpx.AsyncClient, path: tuple[Any, ...], value: Any
) -> None:
    body = order_body()
    target: Any = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    r = await api.post("/orders", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


async def test_negative_and_huge_numbers_elsewhere_are_4xx(api: httpx.AsyncClient) -> None:
    for amount in (-1, 0, "NaN", "Infinity", "-Infinity", 1e30, "0.001", "1e999999", True):
        r = await api.post("/orders/SO-1/payments", json={"amount": amount})
        assert r.status_code == 422, (amount, r.text)
    for limit in ("-1", "0", "201", str(10**30), "1e3", "ten"):
        r = await api.get("/orders", params={"limit": limit})
        assert r.status_code == 422, (limit, r.text)
    for params in ({"total_min": "-1"}, {"total_max": "1e400"}, {"created_from": "0"}):
        r = await api.get("/orders", params=params)
        assert r.status_code == 422, (params, r.text)
    for quantity in (-5, 0, 10**7, 10**100):
        body = {"sku": "SKU-TEA-001", "warehouse_id": "WH-SHA", "quantity": quantity}
        r = await api.post("/inventory/restock", json=body)
        assert r.status_code == 422, (quantity, r.text)
    r = await api.put("/inventory/SKU-TEA-001/safety-stock", json={"safety_stock": -1})
    assert r.status_code == 422
    for params in ({"limit": "-1"}, {"limit": "100000"}, {"from": "0"}, {"to": "99999-01-01"}):
        r = await api.get("/reports/best-sellers", params=params)
        assert r.status_code == 422, (params, r.text)
    # More digits than Python turns into an int: refused as a bad body, not a crash.
    r = await api.post(
        "/orders",
        content='{"lines": [{"sku": "SKU-TEA-001", "quantity": ' + "9" * 5000 + "}]}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text


async def test_nul_characters_are_422(api: httpx.AsyncClient) -> None:
    for field, value in (("name", "Li\x00Lei"), ("id", "C-\x00")):
        body = order_body()
        body["customer"][field] = value
        r = await api.post("/orders", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "nul_character"
    r = await api.post("/orders", json=order_body(notes="a\x00b"))
    assert r.status_code == 422
    assert (await api.get("/orders", params={"q": "ab\x00cd"})).status_code == 422
    assert (await api.get("/orders/SO-%00")).status_code == 422
    r = await api.post("/imports", params={"format": "csv"}, content=b"a,b\n\x00,1\n")
    assert r.status_code == 422
    # An escaped backslash before "u0000" is text, not a NUL: the order is refused for its
    # unknown SKU, not for the text.
    literal = json.dumps(order_body([("SKU-NONE", 1)], notes="C:\\u0000"))
    assert "\\\\u0000" in literal
    r = await api.post("/orders", content=literal, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_lines", r.text


async def test_overlong_ids_are_422_not_a_half_written_order(make_stack: Any) -> None:
    stack = await make_stack(start_worker=False)
    body = order_body(customer_id="C-" + "9" * 63)
    r = await stack.api.post("/orders", json=body)
    assert r.status_code == 422, r.text
    body = order_body()
    body["customer"]["phone"] = "+1 " + "5" * 70
    assert (await stack.api.post("/orders", json=body)).status_code == 422
    admin = stack.api_as(await stack.key(Role.ADMIN))
    r = await admin.post("/admin/api-keys", json={"name": "n" * 65, "role": "staff"})
    assert r.status_code == 422, r.text
    r = await admin.post(
        "/admin/api-keys", json={"name": "n", "role": "customer", "customer_id": "C" * 65}
    )
    assert r.status_code == 422, r.text
    patch = await stack.api.patch("/orders/SO-1", json={"contact": {"email": "not an email"}})
    assert patch.status_code == 422, patch.text


async def test_unicode_is_stored_verbatim(make_stack: Any) -> None:
    stack = await make_stack()
    tag = uuid.uuid4().hex[:8]
    body = order_body(notes=" | ".join(UNICODE.values()))
    body["customer"]["name"] = f"{UNICODE['emoji']} {tag}"
    body["ship_to"].update(name=UNICODE["rtl"], line1=UNICODE["combining"], city=UNICODE["emoji"])
    order = await place(stack.api, body)
    oid = order["order_id"]
    assert order["customer"]["name"] == body["customer"]["name"]
    await wait_status(stack.api, oid, {"CONFIRMED", "PICKING", "PACKED", "SHIPPED", "COMPLETED"})
    [(name, view)] = await stack.sql(
        "select customer_name, view from orders where order_id = :o", o=oid
    )
    assert name == body["customer"]["name"]
    assert view["notes"] == body["notes"]
    assert {k: view["ship_to"][k] for k in ("name", "line1", "city")} == {
        "name": UNICODE["rtl"],
        "line1": UNICODE["combining"],
        "city": UNICODE["emoji"],
    }
    found = (await stack.api.get("/orders", params={"customer_name": UNICODE["emoji"]})).json()
    assert oid in [i["order_id"] for i in found["items"]]
    page = await stack.api.get(f"/orders/{oid}/documents/invoice", params={"format": "html"})
    assert page.status_code == 200 and UNICODE["rtl"] in page.text
    pdf = await stack.api.get(f"/orders/{oid}/documents/invoice")
    assert pdf.status_code == 200
    assert oid in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)


async def test_metacharacters_are_stored_verbatim_and_shown_escaped(make_stack: Any) -> None:
    stack = await make_stack()
    tag = uuid.uuid4().hex[:8]
    body = _hostile_order(tag)
    order = await place(stack.api, body)
    oid = order["order_id"]
    await wait_status(stack.api, oid, {"CONFIRMED", "PICKING", "PACKED", "SHIPPED", "COMPLETED"})

    [row] = await stack.sql(
        "select customer_id, customer_name, customer_email, customer_phone, channel_order_id,"
        " view from orders where order_id = :o",
        o=oid,
    )
    customer = body["customer"]
    assert tuple(row[:5]) == (
        customer["id"],
        customer["name"],
        customer["email"],
        customer["phone"],
        body["channel_order_id"],
    )
    view = row[5]
    assert view["notes"] == body["notes"]
    assert view["ship_to"] == body["ship_to"] and view["bill_to"] == body["bill_to"]
    assert (await stack.sql("select count(*) from orders"))[0][0] > 0

    # Found by its own text, as text: the quote does not end the SQL string.
    found = await stack.api.get("/orders", params={"q": body["channel_order_id"]})
    assert [i["order_id"] for i in found.json()["items"]] == [oid]
    r = await stack.api.get(f"/customers/{quote(customer['id'], safe='')}")
    assert r.status_code == 200 and r.json()["profile"]["name"] == customer["name"], r.text

    for kind in ("confirmation", "invoice", "packing-slip"):
        page = await stack.api.get(f"/orders/{oid}/documents/{kind}", params={"format": "html"})
        assert page.status_code == 200, page.text
        assert SCRIPT not in page.text and "<b>" not in page.text
        assert escape(SCRIPT) in page.text and escape(SQL) in page.text
        assert SHELL in page.text
        pdf = await stack.api.get(f"/orders/{oid}/documents/{kind}")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
        assert oid in text and "DROP TABLE orders" in text

    refused = dict(body, promotion_code=SQL[:40], channel_order_id=f"{tag}-promo")
    r = await stack.api.post("/orders", json=refused)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_promotion"


async def test_report_page_escapes_a_hostile_product_name(make_stack: Any) -> None:
    stack = await make_stack()
    sku = await stack.add_product({"WH-SHA": 5})
    name = f"{SCRIPT} {SQL} {sku}"
    async with stack.sessions.begin() as s:
        await s.execute(text("update products set name = :n where sku = :s"), {"n": name, "s": sku})
    order = await place(stack.api, order_body([(sku, 2)]))
    await wait_status(
        stack.api, order["order_id"], {"CONFIRMED", "PICKING", "PACKED", "SHIPPED", "COMPLETED"}
    )
    today = datetime.now(UTC).date().isoformat()

    async def page() -> str:
        r = await stack.api.get("/reports", params={"from": today, "to": today})
        assert r.status_code == 200
        return r.text

    shown = await eventually(page, lambda t: sku in t)
    assert SCRIPT not in shown
    assert escape(name) in shown
