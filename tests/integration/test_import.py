"""Importing orders from a channel's file: created, duplicate on re-import, refused rows (§1)."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path

from api.app import create_app
from orderflow.import_cli import SOME_REJECTED, run_import
from tests.integration.conftest import ServerThread, free_port
from tests.integration.helpers import wait_status

HEADER = (
    "channel,channel_order_id,customer_id,customer_name,customer_email,ship_name,ship_line1,"
    "ship_city,ship_postal_code,ship_country,payment_method,sku,quantity\n"
)


def _csv(tag: str, sku: str) -> str:
    def row(oid: str, s: str, qty: str, email: str = "li@example.com") -> str:
        return (
            f"marketplace,{tag}-{oid},C-IMP-{tag},Li Lei,{email},Li Lei,1 Road,Shanghai,"
            f"200001,CN,invoice,{s},{qty}\n"
        )

    return (
        HEADER
        + row("1", sku, "2")
        + row("2", sku, "1")
        + row("1", "SKU-TEA-001", "1")  # a second line of order 1
        + row("3", "SKU-NOPE-404", "1")  # unknown SKU
        + row("4", sku, "1", email="not-an-email")
        + row("5", sku, "x")
    )


async def test_import_through_the_api_is_idempotent(make_stack) -> None:
    stack = await make_stack()
    tag = uuid.uuid4().hex[:6].upper()
    sku = await stack.add_product({"WH-SHA": 50})
    text = _csv(tag, sku)

    r = await stack.api.post("/imports", params={"format": "csv"}, content=text.encode())
    assert r.status_code == 200, r.text
    summary = r.json()
    assert (summary["created"], summary["duplicates"], summary["rejected"]) == (2, 0, 3)
    reasons = {tuple(x["lines"]): x["reason"] for x in summary["rejections"]}
    assert reasons[(5,)].startswith("invalid_lines")
    assert "email" in reasons[(6,)]
    assert reasons[(7,)] == "quantity 'x' is not a number"
    made = {o["channel_order_id"]: o["order_id"] for o in summary["orders"]}
    assert set(made) == {f"{tag}-1", f"{tag}-2"}

    # Each imported order runs like any other: invoice orders wait for their payment.
    view = await wait_status(stack.api, made[f"{tag}-1"], "AWAITING_PAYMENT")
    assert view["channel"] == "marketplace" and len(view["lines"]) == 2

    again = await stack.api.post("/imports", params={"format": "csv"}, content=text.encode())
    assert (again.json()["created"], again.json()["duplicates"]) == (0, 2)
    assert {o["order_id"] for o in again.json()["orders"]} == set(made.values())
    listed = (await stack.api.get("/orders", params={"customer_id": f"C-IMP-{tag}"})).json()
    assert len(listed["items"]) == 2

    for bad, status in ((b"\xff\xfe", 400), (b"", 422)):
        r = await stack.api.post("/imports", params={"format": "jsonl"}, content=bad)
        assert r.status_code == status, r.text


async def test_import_command_sends_the_file_in_parts(make_stack, tmp_path: Path) -> None:
    stack = await make_stack()
    tag = uuid.uuid4().hex[:6].upper()
    sku = await stack.add_product({"WH-SHA": 50})
    path = tmp_path / "orders.csv"
    path.write_text(_csv(tag, sku))
    server = ServerThread(create_app(stack.settings), free_port()).start()
    try:
        out, bar = io.StringIO(), io.StringIO()
        auth = {"Authorization": f"Bearer {stack.staff_key}"}
        code = await asyncio.to_thread(run_import, path, server.url, None, 1, out, bar, auth)
        assert code == SOME_REJECTED
        report = out.getvalue()
        assert "created     2" in report and "rejected    3" in report
        assert "line 5: invalid_lines" in report and "line 7: quantity 'x'" in report
        assert bar.getvalue().rstrip().endswith("4/4 orders")  # 4 sent, 1 refused locally
        out = io.StringIO()
        code = await asyncio.to_thread(run_import, path, server.url, None, 40, out, bar, auth)
        assert "created     0\nduplicates  2" in out.getvalue() and code == SOME_REJECTED
    finally:
        server.stop()
