"""Amounts are Decimal everywhere they travel: API bodies, workflow inputs, views (§10)."""

from __future__ import annotations

import inspect
import re
import types
import typing
from decimal import Decimal

from pydantic import BaseModel

import api.schemas
import api.supply_schemas
import models.order
import models.purchasing
import models.returns
import workflows.contract
import workflows.purchase_contract

MODULES = (
    api.schemas,
    api.supply_schemas,
    models.order,
    models.purchasing,
    models.returns,
    workflows.contract,
    workflows.purchase_contract,
)
MONEY_NAME = re.compile(
    r"(^|_)(amount|total|price|captured|refunded|fee|tax|subtotal|discount|cost)(_|$)"
)


def _models() -> list[type[BaseModel]]:
    found = {
        obj
        for module in MODULES
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseModel) and obj.__module__ == module.__name__
    }
    return sorted(found, key=lambda m: m.__qualname__)


def _decimal_only(annotation: object) -> bool:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _decimal_only(args[0])
    if origin in (typing.Union, types.UnionType):
        return all(a is type(None) or _decimal_only(a) for a in args)
    return annotation is Decimal


def test_every_amount_field_is_a_decimal() -> None:
    models = _models()
    checked = []
    for model in models:
        for name, field in model.model_fields.items():
            if MONEY_NAME.search(name):
                checked.append(f"{model.__name__}.{name}")
                assert _decimal_only(field.annotation), f"{model.__name__}.{name}"
    # The scan finds the money it is meant to guard.
    assert {"Totals.total", "OrderLine.unit_price", "PaymentBody.amount"} <= set(checked)
    assert len(checked) > 20


def test_amounts_leave_as_exact_strings() -> None:
    line = models.order.OrderLine(
        sku="A", name="Tea", quantity=3, unit_price=Decimal("0.10"), line_total=Decimal("0.30")
    )
    dumped = line.model_dump(mode="json")
    assert dumped["unit_price"] == "0.10" and dumped["line_total"] == "0.30"
