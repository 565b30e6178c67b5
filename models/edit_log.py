"""What an edit changed, before and after, in words for the order's history; no I/O."""

from __future__ import annotations

from models.order import Address, OrderLine, OrderView


def _lines(lines: list[OrderLine]) -> str:
    return ", ".join(f"{ln.quantity} x {ln.sku}" for ln in lines)


def _address(a: Address) -> str:
    parts = [a.name, a.line1, a.line2, f"{a.postal_code} {a.city}", a.country, a.phone]
    return ", ".join(p for p in parts if p)


def describe_edit(before: OrderView, after: OrderView) -> str:
    """Each field the edit changed as `field: old → new`; empty when nothing changed."""
    changes: list[str] = []
    if _lines(before.lines) != _lines(after.lines):
        changes.append(f"lines: {_lines(before.lines)} → {_lines(after.lines)}")
    if before.totals.total != after.totals.total:
        cur = after.totals.currency
        changes.append(f"total: {before.totals.total} → {after.totals.total} {cur}")
    if before.ship_to != after.ship_to:
        changes.append(f"address: {_address(before.ship_to)} → {_address(after.ship_to)}")
    if before.customer.email != after.customer.email:
        changes.append(f"email: {before.customer.email} → {after.customer.email}")
    if before.customer.phone != after.customer.phone:
        changes.append(f"phone: {before.customer.phone or '-'} → {after.customer.phone or '-'}")
    if before.allocation != after.allocation:
        changes.append(f"stock held: {'; '.join(after.allocation) or 'none'}")
    return "; ".join(changes)


def describe_stock(wanted: dict[str, int]) -> str:
    """Units by SKU, as the history shows stock held or released."""
    return ", ".join(f"{q} x {sku}" for sku, q in sorted(wanted.items()))
