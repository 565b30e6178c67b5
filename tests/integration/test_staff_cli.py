"""The staff command line: the API's rules, readable tables, refusals with their rule."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from api.app import create_app
from orderflow.cli import main
from orderflow.staff_cli import REFUSED
from tests.integration.conftest import ServerThread, free_port
from tests.integration.helpers import order_body, place, wait_status


async def test_orders_and_stock_from_the_command_line(make_stack, capsys) -> None:
    stack = await make_stack(warehouse_release_seconds=3600)
    customer = f"C-CLI-{uuid.uuid4().hex[:6]}"
    sku = await stack.add_product({"WH-SHA": 7})
    order = await place(stack.api, order_body([(sku, 2)], customer_id=customer))
    oid = order["order_id"]
    await wait_status(stack.api, oid, "CONFIRMED")
    server = ServerThread(create_app(stack.settings), free_port()).start()

    async def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        try:
            await asyncio.to_thread(main, [*args, "--api", server.url, "--key", stack.staff_key])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return code, capsys.readouterr().out

    try:
        code, out = await run("orders", "list", "--customer-id", customer)
        assert code == 0, out
        header, rule, row = out.splitlines()[:3]
        assert header.split() == ["order", "status", "customer", "channel", "total", "placed"]
        assert set(rule.replace(" ", "")) == {"-"}
        assert row.split()[:3] == [oid, "CONFIRMED", customer]

        code, out = await run("orders", "show", oid)
        assert code == 0 and oid in out and sku in out and "status:CONFIRMED" in out

        code, out = await run("stock", sku)
        assert out.splitlines()[2].split() == ["WH-SHA", "7", "2", "5"]
        assert "available 5, safety stock 0, on order 0, backordered 0" in out

        code, out = await run("orders", "approve", oid)
        assert code == REFUSED and "not_pending_review" in out

        code, out = await run("orders", "modify", oid, '{"contact": {"phone": "+86 9"}}')
        assert code == 0 and "changed" in out

        code, out = await run("orders", "cancel", oid, "--reason", "asked by phone")
        assert code == 0 and out.strip() == f"{oid} is CANCELLED"
        code, out = await run("orders", "cancel", oid)
        assert code == REFUSED and "closed" in out
    finally:
        server.stop()
    with pytest.raises(SystemExit):
        main(["orders", "fly"])
