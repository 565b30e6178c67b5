"""After-sales money balances: exchanges are valued, every return is refunded at the gateway,
the books show what was kept, invoices bill only what was charged, reports count money kept."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.integration.helpers import eventually, order_body, place, wait_status

D = Decimal
HOLD = "11111"  # the carrier stand-in holds these parcels until told to move


async def _delivered(stack: Any, lines: list[tuple[str, int]], **kw: Any) -> dict[str, Any]:
    order = await place(stack.api, order_body(lines, **kw))
    return await wait_status(stack.api, order["order_id"], "DELIVERED", 60)


async def _ask_return(stack: Any, oid: str, body: dict[str, Any]) -> str:
    r = await stack.api.post(f"/orders/{oid}/returns", json=body)
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["related"] if x["type"] == "return"][-1]


async def _return_view(stack: Any, rid: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        return (await stack.api.get(f"/returns/{rid}")).json()  # type: ignore[no-any-return]

    return await eventually(probe, lambda v: v.get("status") == status, 60)  # type: ignore[no-any-return]


async def _carry_out(stack: Any, rid: str, end: str) -> dict[str, Any]:
    """Approve the return, let the parcel come back sellable, and wait for its end."""
    r = await stack.api.post(f"/returns/{rid}/decision", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    await _return_view(stack, rid, "RECEIVED")
    r = await stack.api.post(f"/returns/{rid}/receipt", json={"condition": "sellable"})
    assert r.status_code == 200, r.text
    return await _return_view(stack, rid, end)


async def _order(stack: Any, oid: str, ok: Any) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        r = await stack.api.get(f"/orders/{oid}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    return await eventually(probe, ok, 60)  # type: ignore[no-any-return]


async def _auths(stack: Any, oid: str) -> list[dict[str, Any]]:
    ledger = (await stack.payment.get("/_admin/ledger")).json()
    return [a for a in ledger["authorizations"] if a["order_id"] == oid]


def _books(view: dict[str, Any]) -> dict[str, Decimal]:
    return {k: D(v) for k, v in view["books"].items() if k != "currency"}


def _balanced(view: dict[str, Any]) -> bool:
    b = _books(view)
    return b["captured"] - b["refunded"] == b["kept"] and b["kept"] >= 0


async def test_exchange_worth_more_than_its_credit_charges_the_difference(make_stack) -> None:
    # A few seconds before picking, to try an edit of the exchange order.
    stack = await make_stack(after_sales_window_seconds=3600, warehouse_release_seconds=5)
    tin = await stack.add_product({"WH-SHA": 10}, price="22.00")
    kettle = await stack.add_product({"WH-SHA": 10}, price="64.50")
    order = await _delivered(stack, [(tin, 2)])
    oid = order["order_id"]
    rid = await _ask_return(
        stack,
        oid,
        {
            "lines": [{"sku": tin, "quantity": 1}],
            "reason": "a kettle after all",
            "kind": "exchange",
            "exchange_lines": [{"sku": kettle, "quantity": 3}],
        },
    )

    # Staff see both values, and the difference, before they decide.
    asked = await _return_view(stack, rid, "REQUESTED")
    assert D(asked["refund_amount"]) == D("24.86")
    exchange = asked["exchange"]
    assert [(ln["sku"], ln["quantity"]) for ln in exchange["lines"]] == [(kettle, 3)]
    assert D(exchange["credit"]) == D("24.86")
    assert D(exchange["value"]) == D("218.66")
    assert D(exchange["difference"]) == D("193.80")
    assert "193.80" in exchange["settles_by"] and "card" in exchange["settles_by"]

    done = await _carry_out(stack, rid, "EXCHANGED")
    new_id = done["exchange_order_id"]
    await wait_status(stack.api, new_id, "CONFIRMED")
    # Its goods were valued against the credit: repricing them would charge the credit again.
    r = await stack.api.patch(f"/orders/{new_id}", json={"lines": [{"sku": kettle, "quantity": 2}]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "exchange_lines_fixed", r.text
    new = await wait_status(stack.api, new_id, "DELIVERED", 60)
    # The exchange order is paid by the credit and, for the rest, by the original card.
    assert new["payment_method"] == "card"
    assert D(new["totals"]["credit"]) == D("24.86")
    assert D(new["totals"]["total"]) == D("193.80")
    assert _books(new) == {
        "authorized": D("193.80"),
        "captured": D("193.80"),
        "refunded": D("0"),
        "kept": D("193.80"),
        "credit": D("24.86"),
    }
    [auth] = await _auths(stack, new_id)
    assert D(auth["amount"]) == D("193.80")
    assert [D(x["amount"]) for x in auth["captures"]] == [D("193.80")]

    # The original keeps what it was paid: the credit went to the exchange, nothing back.
    original = await wait_status(stack.api, oid, "RETURNED")
    assert D(original["books"]["refunded"]) == 0
    assert D(original["books"]["kept"]) == D(original["totals"]["total"])
    assert {"type": "exchange", "id": new_id} in original["related"]
    [auth] = await _auths(stack, oid)
    assert auth["refunds"] == []
    await stack.save_history(oid, "order_exchanged_for_more_v7")
    await stack.save_history(rid, "return_exchange_charged_v3", closed=True)
    await stack.save_history(new_id, "order_exchange_with_balance_v7")


async def test_exchange_worth_less_than_its_credit_refunds_the_difference(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    tin = await stack.add_product({"WH-SHA": 10}, price="22.00")
    kettle = await stack.add_product({"WH-SHA": 10}, price="64.50")
    order = await _delivered(stack, [(kettle, 2)])
    oid = order["order_id"]
    rid = await _ask_return(
        stack,
        oid,
        {
            "lines": [{"sku": kettle, "quantity": 1}],
            "reason": "one is enough, and some tea",
            "kind": "exchange",
            "exchange_lines": [{"sku": tin, "quantity": 1}],
        },
    )
    asked = await _return_view(stack, rid, "REQUESTED")
    assert D(asked["exchange"]["credit"]) == D("72.89")
    assert D(asked["exchange"]["value"]) == D("30.51")
    assert D(asked["exchange"]["difference"]) == D("-42.38")

    done = await _carry_out(stack, rid, "EXCHANGED")
    assert D(done["refunded"]) == D("42.38")
    new = await wait_status(stack.api, done["exchange_order_id"], "DELIVERED", 60)
    assert new["payment_method"] == "exchange_credit"
    assert D(new["totals"]["total"]) == 0 and D(new["totals"]["credit"]) == D("30.51")
    assert D(new["books"]["captured"]) == 0 and D(new["books"]["credit"]) == D("30.51")
    assert await _auths(stack, new["order_id"]) == []

    # The difference went back to the original card, once, and the books show it.
    original = await _order(stack, oid, lambda v: D(v["books"]["refunded"]) > 0)
    assert _books(original)["refunded"] == D("42.38")
    assert _balanced(original)
    [auth] = await _auths(stack, oid)
    assert [D(x["amount"]) for x in auth["refunds"]] == [D("42.38")]
    await stack.save_history(rid, "return_exchange_difference_refunded_v3", closed=True)


async def test_exchange_of_a_pay_later_order_waits_for_the_difference(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    tin = await stack.add_product({"WH-SHA": 10}, price="22.00")
    kettle = await stack.add_product({"WH-SHA": 10}, price="64.50")
    order = await place(
        stack.api,
        {**order_body([(tin, 2)]), "payment": {"method": "bank_transfer"}},
    )
    oid = order["order_id"]
    await wait_status(stack.api, oid, "AWAITING_PAYMENT")
    r = await stack.api.post(
        f"/orders/{oid}/payments", json={"amount": order["totals"]["total"], "reference": "T-1"}
    )
    assert r.status_code == 200, r.text
    await wait_status(stack.api, oid, "DELIVERED", 60)
    rid = await _ask_return(
        stack,
        oid,
        {
            "lines": [{"sku": tin, "quantity": 1}],
            "reason": "kettle",
            "kind": "exchange",
            "exchange_lines": [{"sku": kettle, "quantity": 1}],
        },
    )
    asked = await _return_view(stack, rid, "REQUESTED")
    difference = D(asked["exchange"]["difference"])
    # One kettle, 64.50, ships for 5.00 and carries 13 % tax: 78.54 against 24.86 of credit.
    assert D(asked["exchange"]["value"]) == D("78.54") and difference == D("53.68")
    assert "bank_transfer" in asked["exchange"]["settles_by"]
    done = await _carry_out(stack, rid, "EXCHANGED")
    new_id = done["exchange_order_id"]
    new = await wait_status(stack.api, new_id, "AWAITING_PAYMENT")
    assert D(new["totals"]["total"]) == difference
    # Only the difference is asked for; the credit is not paid twice.
    r = await stack.api.post(
        f"/orders/{new_id}/payments", json={"amount": "78.54", "reference": "T-2"}
    )
    assert r.status_code == 409, r.text
    r = await stack.api.post(
        f"/orders/{new_id}/payments", json={"amount": str(difference), "reference": "T-3"}
    )
    assert r.status_code == 200, r.text
    new = await wait_status(stack.api, new_id, "DELIVERED", 60)
    assert _books(new)["captured"] == difference and _books(new)["credit"] == D("24.86")


async def test_three_partial_returns_are_each_refunded_at_the_gateway(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="20.00")
    order = await _delivered(stack, [(sku, 3)])
    oid = order["order_id"]
    total = D(order["totals"]["total"])
    refunds: list[Decimal] = []
    for n in (1, 2, 3):
        rid = await _ask_return(
            stack, oid, {"lines": [{"sku": sku, "quantity": 1}], "reason": f"one at a time {n}"}
        )
        done = await _carry_out(stack, rid, "REFUNDED")
        # 1 of 3 x 20.00: its share of goods and their tax, never the shipping.
        assert D(done["refunded"]) == D("22.60")
        refunds.append(D(done["refunded"]))
        view = await _order(stack, oid, lambda v, n=n: D(v["books"]["refunded"]) == D("22.60") * n)
        assert _balanced(view)
        assert _books(view)["captured"] == total
        assert _books(view)["kept"] == total - sum(refunds)
        [auth] = await _auths(stack, oid)
        assert [D(x["amount"]) for x in auth["refunds"]] == refunds
        assert D(auth["captured_amount"]) - D(auth["refunded_amount"]) == _books(view)["kept"]
        # Each refund is booked once, under the key it was made with at the gateway.
        assert [r["reference"] for r in view["refunds"]] == [
            f"{x['id']}:refund" for x in view["related"] if x["type"] == "return"
        ]
        if n == 2:
            await stack.save_history(oid, "order_returned_twice_v7")
    view = await wait_status(stack.api, oid, "REFUNDED")
    assert not [a for a in view["alerts"] if a["kind"] == "refund_due"]
    # Shipping is not given back for returns that come a line at a time.
    assert _books(view)["kept"] == total - D("67.80") > 0
    await stack.save_history(oid, "order_returned_three_times_v7", closed=True)


async def _split_and_cancel_one(stack: Any) -> tuple[str, str, str, dict[str, Any]]:
    tea = await stack.add_product({"WH-SHA": 5}, price="10.00")
    cups = await stack.add_product({"WH-RTM": 5}, price="30.00")
    order = await place(stack.api, order_body([(tea, 2), (cups, 1)], postal_code=HOLD))
    oid = order["order_id"]
    view = await _order(
        stack,
        oid,
        lambda v: len(v["shipments"]) == 2 and all(s["tracking_number"] for s in v["shipments"]),
    )
    sha = next(s for s in view["shipments"] if s["warehouse"] == "WH-SHA")
    r = await stack.carrier.post(f"/_admin/shipments/{sha['shipment_id']}/advance")
    assert r.status_code == 200, r.text
    await wait_status(stack.api, oid, "PARTIALLY_SHIPPED")
    r = await stack.api.post(f"/orders/{oid}/cancel", json={"reason": "cups not needed"})
    assert r.status_code == 200, r.text
    return oid, tea, cups, r.json()


def _sections(page: str) -> dict[str, str]:
    return {part.split("</h2>")[0]: part for part in page.split("<h2>")[1:]}


async def test_invoice_bills_only_what_was_charged(make_stack) -> None:
    stack = await make_stack()
    oid, tea, cups, view = await _split_and_cancel_one(stack)
    rtm = next(s for s in view["shipments"] if s["warehouse"] == "WH-RTM")
    assert rtm["status"] == "cancelled" and D(rtm["captured"]) == 0
    billed = D(view["totals"]["total"]) - D(rtm["amount"])

    r = await stack.api.get(f"/orders/{oid}/documents/invoice", params={"format": "html"})
    assert r.status_code == 200, r.text
    sections = _sections(r.text)
    assert tea in sections["Items"] and cups not in sections["Items"]
    assert cups in sections["Cancelled, not charged"]
    assert "Corrected invoice" in r.text
    assert f'<td class="num">Total</td><td class="num">{billed} USD</td>' in r.text
    pdf = await stack.api.get(f"/orders/{oid}/documents/invoice")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


async def test_credit_note_lists_each_refund(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    sku = await stack.add_product({"WH-SHA": 10}, price="20.00")
    order = await _delivered(stack, [(sku, 3)])
    oid = order["order_id"]
    rid = await _ask_return(stack, oid, {"lines": [{"sku": sku, "quantity": 1}], "reason": "x"})
    await _carry_out(stack, rid, "REFUNDED")
    await _order(stack, oid, lambda v: D(v["books"]["refunded"]) > 0)
    r = await stack.api.get(f"/orders/{oid}/documents/credit-note", params={"format": "html"})
    assert r.status_code == 200, r.text
    assert f"CN-{oid[3:]}" in r.text and rid in r.text and "22.60 USD" in r.text
    invoice = await stack.api.get(f"/orders/{oid}/documents/invoice", params={"format": "html"})
    assert "Refunded" in invoice.text and "-22.60 USD" in invoice.text
    kept = D(order["totals"]["total"]) - D("22.60")
    assert f"{kept} USD" in invoice.text


async def test_revenue_value_and_points_are_net_of_refunds_and_credit(make_stack) -> None:
    stack = await make_stack(after_sales_window_seconds=3600)
    customer = f"C-NET-{uuid.uuid4().hex[:6]}"
    sku = await stack.add_product({"WH-SHA": 20}, price="20.00")
    other = await stack.add_product({"WH-SHA": 20}, price="10.00")

    # Order 1 keeps two of its three units: one is returned and refunded.
    first = await _delivered(stack, [(sku, 3)], customer_id=customer)
    rid = await _ask_return(
        stack, first["order_id"], {"lines": [{"sku": sku, "quantity": 1}], "reason": "too many"}
    )
    await _carry_out(stack, rid, "REFUNDED")
    first_view = await wait_status(stack.api, first["order_id"], "RETURNED")
    kept_first = _books(first_view)["kept"]
    assert kept_first == D(first["totals"]["total"]) - D("22.60")

    # Order 2 trades one unit for a cheaper product: the exchange order is paid by credit.
    second = await _delivered(stack, [(sku, 2)], customer_id=customer)
    rid = await _ask_return(
        stack,
        second["order_id"],
        {
            "lines": [{"sku": sku, "quantity": 1}],
            "reason": "swap",
            "kind": "exchange",
            "exchange_lines": [{"sku": other, "quantity": 1}],
        },
    )
    done = await _carry_out(stack, rid, "EXCHANGED")
    exchange = await wait_status(stack.api, done["exchange_order_id"], "DELIVERED", 60)
    second_view = await _order(stack, second["order_id"], lambda v: D(v["books"]["refunded"]) > 0)
    kept_second = _books(second_view)["kept"]

    async def picture() -> dict[str, Any]:
        r = await stack.api.get(f"/customers/{customer}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    p = await picture()
    statuses = {o["order_id"]: o["status"] for o in p["orders"]}
    assert statuses[exchange["order_id"]] == "DELIVERED"
    assert p["lifetime_value"] == [{"currency": "USD", "amount": str(kept_first + kept_second)}]
    # Points for what was kept of both orders; the exchange order was paid by credit.
    assert p["loyalty_points"] == int(kept_first) + int(kept_second)

    today = datetime.now(UTC).date()
    span = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))}
    r = await stack.api.get("/reports/sales", params={"by": "product", **span})
    assert r.status_code == 200, r.text
    rows = {row["key"]: row for row in r.json()["rows"]}
    # Five units sold at 20.00 = 100.00 of goods; the refund took back a third of order 1
    # (20.00 of its goods) and the exchange difference a share of order 2's.
    first_goods = D("60.00") * kept_first / D(first["totals"]["total"])
    second_goods = D("40.00") * kept_second / D(second["totals"]["total"])
    expected = (first_goods + second_goods).quantize(D("0.01"))
    assert abs(D(rows[sku]["revenue"]) - expected) <= D("0.01")
    assert D(rows[sku]["revenue"]) < D("100.00")
    # The goods paid for with exchange credit are no sale.
    assert other not in rows
