"""An order's payment and fulfilment state in one word, from its recorded view."""

from __future__ import annotations

import pytest

from models.order_states import fulfilment_state, payment_state


@pytest.mark.parametrize(
    ("payments", "state"),
    [
        ([], "unpaid"),
        ([{"status": "authorized"}], "authorized"),
        ([{"status": "voided"}, {"status": "authorized"}], "authorized"),
        ([{"status": "partially_captured"}], "partly paid"),
        ([{"status": "captured", "refunded": "0.00"}], "paid"),
        ([{"status": "paid"}], "paid"),
        ([{"status": "captured", "refunded": "5.00"}], "partly refunded"),
        ([{"status": "partly_refunded"}], "partly refunded"),
        ([{"status": "refunded"}], "refunded"),
        ([{"status": "paid"}, {"status": "refund_due"}], "refund due"),
        ([{"status": "voided"}], "voided"),
    ],
)
def test_payment_state(payments: list[dict[str, str]], state: str) -> None:
    assert payment_state({"payments": payments}) == state


@pytest.mark.parametrize(
    ("status", "shipments", "state"),
    [
        ("PLACED", [], "unfulfilled"),
        ("CONFIRMED", [], "unfulfilled"),
        ("PICKING", [], "in the warehouse"),
        ("PACKED", [{}], "in the warehouse"),
        ("PARTIALLY_SHIPPED", [{}], "partly shipped"),
        ("SHIPPED", [{}], "shipped"),
        ("DELIVERED", [{}], "delivered"),
        ("RETURNED", [{}], "delivered"),
        ("CANCELLED", [], "not shipped"),
        ("CANCELLED", [{}], "stopped"),
    ],
)
def test_fulfilment_state(status: str, shipments: list[dict[str, str]], state: str) -> None:
    assert fulfilment_state({"status": status, "shipments": shipments}) == state
