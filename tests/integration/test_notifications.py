"""Emails go out through the outbox, exactly once each, even when a step is retried (§2.6)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from activities.records import RecordActivities, SaveViewInput
from models.notifications import Notification
from models.order import Customer, OrderView, Totals
from tests.integration.helpers import eventually, order_body, place, wait_status


async def test_a_completed_order_sends_each_email_once(make_stack) -> None:
    stack = await make_stack()
    order = await place(stack.api, order_body(customer_id="C-MAIL-1"))
    oid = order["order_id"]
    view = await wait_status(stack.api, oid, "COMPLETED")
    kinds = ["confirmed", "shipped", "delivered"]
    emails = await eventually(
        lambda: stack.emails(oid), lambda ms: len(ms) >= len(kinds), within=15
    )
    assert sorted(m["headers"]["X-Orderflow-Kind"] for m in emails) == sorted(kinds)
    assert all(m["to"] == "li@example.com" for m in emails)
    shipped = next(m for m in emails if m["headers"]["X-Orderflow-Kind"] == "shipped")
    assert view["shipments"][0]["tracking_number"] in shipped["text"]
    notified = [h["kind"] for h in view["history"] if h["kind"].startswith("notified:")]
    assert notified == [f"notified:{k}" for k in kinds]
    log = await eventually(
        lambda: _log(stack, oid), lambda items: [m["status"] for m in items] == ["sent"] * 3
    )
    assert [m["kind"] for m in log] == kinds


async def _log(stack, oid: str) -> list[dict]:
    return (await stack.api.get(f"/orders/{oid}/messages")).json()["items"]


async def test_a_retried_step_writes_and_sends_its_email_once(make_stack) -> None:
    stack = await make_stack()
    now = datetime.now(UTC)
    oid = f"SO-RETRY-{now:%H%M%S%f}"
    view = OrderView(
        order_id=oid,
        status="CONFIRMED",
        customer=Customer(id="C-R", name="R", email="r@example.com"),
        channel="web",
        ship_to=order_body()["ship_to"],
        payment_method="card",
        lines=[],
        totals=Totals(
            currency="USD",
            subtotal=Decimal("0"),
            discount=Decimal("0"),
            shipping=Decimal("0"),
            tax=Decimal("0"),
            total=Decimal("0"),
        ),
        created_at=now,
        updated_at=now,
    )
    note = Notification(
        key=f"{oid}:confirmed:1",
        order_id=oid,
        kind="confirmed",
        to="r@example.com",
        subject="confirmed",
        text="hello",
    )
    records = RecordActivities(stack.sessions)
    # The same activity input twice, as a retry after a lost reply would send it.
    for _ in range(2):
        await records.save_view(SaveViewInput(view=view, seq=1, notifications=[note]))
    await eventually(lambda: stack.emails(oid), lambda ms: len(ms) >= 1, within=10)
    await records.save_view(SaveViewInput(view=view, seq=1, notifications=[note]))
    one = (await stack.mail.get(f"/messages/{oid}.confirmed.1@orderflow")).json()
    assert one["copies"] == 1
    assert len(await stack.emails(oid)) == 1


async def test_emails_wait_out_an_smtp_outage(make_stack, smtp_server) -> None:
    stack = await make_stack()
    smtp_server.down = True
    try:
        order = await place(stack.api, order_body(customer_id="C-MAIL-2"))
        oid = order["order_id"]
        await wait_status(stack.api, oid, "COMPLETED")
        assert await stack.emails(oid) == []
        pending = await stack.sql("select count(*) from outbox where order_id=:o", o=oid)
        assert pending == [(3,)]
    finally:
        smtp_server.down = False
    emails = await eventually(lambda: stack.emails(oid), lambda ms: len(ms) == 3, within=15)
    assert len({m["message_id"] for m in emails}) == 3


async def test_staff_get_alert_emails(make_stack) -> None:
    stack = await make_stack(review_amount_over=Decimal("1"))
    order = await place(stack.api, order_body())
    oid = order["order_id"]
    await wait_status(stack.api, oid, "PENDING_REVIEW")
    emails = await eventually(lambda: stack.emails(oid), lambda ms: len(ms) >= 1, within=10)
    assert emails[0]["to"] == stack.settings.staff_email
    assert "review_needed" in emails[0]["subject"]
    await stack.api.post(f"/orders/{oid}/cancel", json={})
