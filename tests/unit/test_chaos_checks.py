"""The chaos run's invariants on evidence made by hand: each one can fail, and says why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from activities.outbox import message_id
from bench.chaos_checks import (
    answers_agree,
    books_balance,
    no_email_twice,
    payments_booked_once,
    resent_keeps_message_id,
)
from bench.chaos_evidence import Crash, Evidence
from bench.chaos_orders import CANCEL, LINES, PAYMENT, Attempt, Edit, Kind, OrderPlan, OrderRun
from providers.mail import MESSAGE_ID_DOMAIN

T0 = 1_800_000_000.0


def _view(
    oid: str = "SO-1", method: str = "card", payments: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "order_id": oid,
        "payment_method": method,
        "payments": payments or [],
        "shipments": [{"shipment_no": "", "status": "delivered", "shipment_id": "s1"}],
        "lines": [{"sku": "TEA", "quantity": 1}],
        "totals": {"total": "10.00"},
    }


def _evidence(view: dict[str, Any], status: str = "COMPLETED", **more: Any) -> Evidence:
    ev = Evidence(**more)
    ev.orders[view["order_id"]] = {"status": status, "view": view}
    ev.parcels[view["order_id"]] = [{"events": ["picked_up"]}]
    return ev


def _auth(oid: str = "SO-1", captures: int = 1, refunds: int = 0) -> dict[str, Any]:
    return {
        "id": "auth_1",
        "order_id": oid,
        "amount": "10.00",
        "captures": [{"amount": "10.00", "idempotency_key": f"cap{i}"} for i in range(captures)],
        "refunds": [{"amount": "10.00", "idempotency_key": f"re{i}"} for i in range(refunds)],
        "voids": [],
    }


def _run(*edits: Edit) -> OrderRun:
    run = OrderRun(OrderPlan(0, Kind.EDITED, 0.0, {}, "k"), order_id="SO-1")
    run.edits = list(edits)
    return run


def _paid(ref: str) -> dict[str, Any]:
    return {
        "authorization_id": f"bank_transfer:{ref}",
        "amount": "10.00",
        "status": "paid",
        "captured": "10.00",
    }


def test_a_reference_booked_twice_is_a_violation() -> None:
    once = _evidence(_view(method="bank_transfer", payments=[_paid("R1")]))
    twice = _evidence(_view(method="bank_transfer", payments=[_paid("R1"), _paid("R1")]))

    assert payments_booked_once(once, []).held
    violations = payments_booked_once(twice, []).violations
    assert any("bank_transfer:R1 booked 2 times" in v for v in violations), violations


def test_a_delivered_transfer_booked_nowhere_is_a_violation() -> None:
    transfer = {"reference": "SO-1", "transfer_id": "tr_1", "amount": "10.00", "delivered": True}
    ev = _evidence(_view(method="bank_transfer"), transfers=[transfer])

    assert payments_booked_once(ev, []).violations == [
        "SO-1: transfer tr_1 of 10.00 delivered, booked nowhere"
    ]


def test_books_balance_against_the_ledger_and_the_goods_kept() -> None:
    kept = _evidence(_view(), authorizations=[_auth()])
    refunded_but_kept = _evidence(_view(), authorizations=[_auth(refunds=1)])
    books = {"captured": "10.00", "refunded": "0.00", "kept": "10.00"}
    books_disagree = _evidence(_view() | {"books": books}, authorizations=[_auth(refunds=1)])

    assert books_balance(kept, []).held
    assert books_balance(refunded_but_kept, []).violations == [
        "SO-1 (COMPLETED): captured 10.00 - refunded 10.00 at the gateway, goods kept worth 10.00"
    ]
    assert len(books_balance(books_disagree, []).violations) == 3


def _edit(what: str, body: dict[str, Any], *answers: Attempt) -> Edit:
    return Edit("SO-1", what, f"k-{what}", body, list(answers))


LOST = Attempt(0)
OK = Attempt(200)
LOCKED = Attempt(409, "lines_locked_after_picking")
IN_PROGRESS = Attempt(409, "request_in_progress")
EDITED = {"lines": [{"sku": "TEA", "quantity": 1}]}
NOT_EDITED = {"lines": [{"sku": "TEA", "quantity": 2}]}


def test_a_refusal_of_an_applied_edit_is_a_violation() -> None:
    ev = _evidence(_view())
    violations = answers_agree(ev, [_run(_edit(LINES, EDITED, LOST, LOCKED))]).violations

    assert len(violations) == 2, violations
    assert "refused (409 lines_locked_after_picking) though applied" in violations[0]
    assert "applied, never answered that it was" in violations[1]


def test_answers_after_a_lost_one_agree_when_the_retry_is_told_the_truth() -> None:
    ev = _evidence(_view())
    runs = [
        _run(
            _edit(LINES, EDITED, LOST, IN_PROGRESS, OK),
            _edit(LINES, NOT_EDITED, LOST, LOCKED),
            _edit(CANCEL, {"reason": "x"}, LOST, Attempt(503, "try_again")),
        )
    ]

    assert answers_agree(ev, runs).held


def test_a_200_for_a_change_not_made_is_a_violation() -> None:
    ev = _evidence(_view(method="bank_transfer"))
    payment = _edit(PAYMENT, {"amount": "10.00", "reference": "R1"}, OK)

    violations = answers_agree(ev, [_run(payment)]).violations
    assert len(violations) == 1
    assert "200 for a change not in the final state" in violations[0]


def _message(mid: str, at: float, text: str = "hello") -> dict[str, Any]:
    return {
        "message_id": mid,
        "to": "a@example.com",
        "subject": "Your order",
        "text": text,
        "headers": {"X-Orderflow-Order": "SO-1", "X-Orderflow-Kind": "confirmed"},
        "received_at": datetime.fromtimestamp(at, UTC).isoformat(),
    }


def _crash(cause: str, process: str, at: float) -> Crash:
    return Crash(cause, frozenset({process}), at, at + 2)


def test_an_email_sent_again_is_excused_once_per_crash_of_its_sender() -> None:
    mid = "SO-1.confirmed.1@orderflow.test"
    copies = [_message(mid, T0), _message(mid, T0 + 5), _message(mid, T0 + 9)]
    one_kill = [_crash("worker killed", "worker", T0 + 0.2)]
    two = [*one_kill, _crash("PostgreSQL killed", "postgres", T0 + 6)]
    api_only = [_crash("API killed", "api", T0 + 0.2)]

    excused = no_email_twice(Evidence(messages=copies, crashes=two), [])
    assert excused.held
    assert (
        excused.note == "resent, same Message-ID: 1 after PostgreSQL killed, 1 after worker killed"
    )
    assert len(no_email_twice(Evidence(messages=copies, crashes=one_kill), []).violations) == 1
    assert len(no_email_twice(Evidence(messages=copies, crashes=api_only), []).violations) == 2


def test_an_email_sent_again_after_a_send_it_logged_as_failed_is_excused_once() -> None:
    key = "SO-1:confirmed:1"
    mid = f"{message_id(key)}@{MESSAGE_ID_DOMAIN}"
    copies = [_message(mid, T0), _message(mid, T0 + 3), _message(mid, T0 + 6)]
    row = {"key": key, "order_id": "SO-1", "kind": "confirmed", "status": "sent"}
    retried = {**row, "attempts": "2", "last_error": "timed out waiting for the server"}

    once = no_email_twice(Evidence(messages=copies, outbox=[retried]), [])
    assert len(once.violations) == 1
    assert once.note == "resent, same Message-ID: 1 after a send that failed and was retried"
    clean = no_email_twice(Evidence(messages=copies, outbox=[{**row, "attempts": "1"}]), [])
    assert len(clean.violations) == 2


def test_the_same_email_under_a_second_message_id_is_a_violation() -> None:
    outbox = [{"key": "SO-1:confirmed:1", "order_id": "SO-1", "kind": "confirmed"}]
    written = f"SO-1.confirmed.1@{MESSAGE_ID_DOMAIN}"
    made_up = f"SO-1.confirmed.2@{MESSAGE_ID_DOMAIN}"
    same_id = Evidence(outbox=outbox, messages=[_message(written, T0), _message(written, T0 + 3)])
    new_id = Evidence(outbox=outbox, messages=[_message(written, T0), _message(made_up, T0 + 3)])

    assert resent_keeps_message_id(same_id, []).held
    assert resent_keeps_message_id(new_id, []).violations == [
        f"SO-1: 'confirmed' email received as {made_up}, no outbox row's",
        f"SO-1: the same 'confirmed' email to a@example.com received under 2 Message-IDs: "
        f"{written}, {made_up}",
    ]


def test_a_payment_refused_as_not_awaiting_payment_by_an_order_that_awaits_it() -> None:
    ev = _evidence(_view(method="bank_transfer"), status="AWAITING_PAYMENT")
    refused = Attempt(409, "not_awaiting_payment")
    payment = _edit(PAYMENT, {"amount": "10.00", "reference": "R1"}, LOST, refused)

    violations = answers_agree(ev, [_run(payment)]).violations
    assert len(violations) == 1
    assert "though the order ends AWAITING_PAYMENT" in violations[0]
