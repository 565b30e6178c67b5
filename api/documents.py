"""Printable documents of an order: confirmation, invoice and packing slip, as HTML and PDF."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, select_autoescape

from models.money import round_money
from models.order import Address, OrderLine, OrderView

KINDS = ("confirmation", "invoice", "packing-slip", "credit-note")
# Parcels of a split order that ended without leaving: what they held was never charged.
UNSHIPPED = ("cancelled", "failed")
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


@dataclass
class Party:
    label: str
    lines: list[str]


@dataclass
class Section:
    title: str
    rows: list[list[str]]


@dataclass
class Document:
    """What a printed document says, whatever it is printed as."""

    title: str
    number: str
    order_id: str
    date: str
    parties: list[Party]
    columns: list[str]
    sections: list[Section]
    # The service the parcel travels at, e.g. "Express delivery".
    delivery: str = ""
    totals: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _address(a: Address) -> list[str]:
    return [x for x in (a.name, a.line1, a.line2, f"{a.postal_code} {a.city}", a.country) if x]


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount} {currency}"


def _uncharged(view: OrderView) -> tuple[dict[str, int], Decimal]:
    """Units of parcels cancelled before anything was captured for them, and their share."""
    units: dict[str, int] = {}
    amount = Decimal("0.00")
    for s in view.shipments:
        if s.shipment_no and s.status in UNSHIPPED and s.captured == 0:
            for sku, q in s.lines.items():
                units[sku] = units.get(sku, 0) + q
            amount += s.amount or 0
    return units, amount


def _rows(lines: list[OrderLine], units: Mapping[str, int] | None = None) -> list[list[str]]:
    """A row per line with `units` of it (all of it by default), priced as on the order."""
    rows = []
    for ln in lines:
        qty = ln.quantity if units is None else units.get(ln.sku, 0)
        if qty > 0:
            amount = ln.line_total if qty == ln.quantity else round_money(ln.unit_price * qty)
            rows.append([ln.sku, ln.name, str(qty), f"{ln.unit_price}", f"{amount}"])
    return rows


def _credit_note(view: OrderView, parties: list[Party], delivery: str) -> Document:
    """Every refund of the order: what went back, for which lines, and why."""
    cur = view.totals.currency
    lines = {ln.sku: ln for ln in view.lines}
    sections = []
    for r in view.refunds:
        rows = [
            [
                sku,
                lines[sku].name if sku in lines else "",
                str(q),
                f"{lines[sku].unit_price}" if sku in lines else "",
                f"{round_money(lines[sku].unit_price * q)}" if sku in lines else "",
            ]
            for sku, q in r.lines.items()
        ]
        rows.append(["", "Refunded, tax included", "", "", f"{r.amount}"])
        sections.append(Section(f"{r.at.date().isoformat()} · {r.reason} · {r.reference}", rows))
    refunded = sum((r.amount for r in view.refunds), Decimal("0.00"))
    return Document(
        "Credit note",
        f"CN-{view.order_id.removeprefix('SO-')}",
        view.order_id,
        (view.refunds[-1].at if view.refunds else view.updated_at).date().isoformat(),
        parties,
        ["SKU", "Item", "Qty", "Unit price", "Amount"],
        sections,
        delivery,
        [("Refunded", _money(refunded, cur))],
        [
            f"Credits invoice INV-{view.order_id.removeprefix('SO-')}"
            + ("" if view.refunds else ": nothing was refunded")
        ],
    )


def build(view: OrderView, kind: str) -> Document:
    """The document of `kind` for the order."""
    t = view.totals
    date = view.created_at.date().isoformat()
    ship = Party("Ship to", _address(view.ship_to))
    delivery = f"{view.delivery.value.capitalize()} delivery"
    if kind == "packing-slip":
        parcels = [s for s in view.shipments if s.status not in ("cancelled", "failed")]
        names = {ln.sku: ln.name for ln in view.lines}
        sections = (
            [
                Section(
                    f"Parcel {s.shipment_no or s.tracking_number} from {s.warehouse}",
                    [[sku, names.get(sku, ""), str(q)] for sku, q in s.lines.items()],
                )
                for s in parcels
                if s.lines
            ]
            if any(s.lines for s in parcels)
            else [Section("Parcel", [[ln.sku, ln.name, str(ln.quantity)] for ln in view.lines])]
        )
        return Document(
            "Packing slip",
            f"PS-{view.order_id.removeprefix('SO-')}",
            view.order_id,
            date,
            [ship],
            ["SKU", "Item", "Quantity"],
            sections,
            delivery,
            notes=[f"Tracking: {s.tracking_number}" for s in parcels if s.tracking_number],
        )
    rows = _rows(view.lines)
    totals = [
        ("Subtotal", f"{t.subtotal} {t.currency}"),
        ("Discount", f"-{t.discount} {t.currency}"),
        (f"Shipping ({view.delivery.value})", f"{t.shipping} {t.currency}"),
        ("Tax", f"{t.tax} {t.currency}"),
        *([("Exchange credit", f"-{t.credit} {t.currency}")] if t.credit else []),
        ("Total", f"{t.total} {t.currency}"),
    ]
    contact = [view.customer.name, view.customer.email, view.customer.phone]
    customer = Party("Customer", [x for x in contact if x])
    bill = Party("Bill to", _address(view.bill_to or view.ship_to))
    if kind == "credit-note":
        return _credit_note(view, [bill, ship], delivery)
    if kind == "invoice":
        return _invoice(view, bill, ship, delivery, date, totals)
    if kind != "confirmation":
        raise ValueError(f"unknown document {kind!r}: one of {', '.join(KINDS)}")
    return Document(
        "Order confirmation",
        view.order_id,
        view.order_id,
        date,
        [customer, ship],
        ["SKU", "Item", "Qty", "Unit price", "Amount"],
        [Section("Items", rows)],
        delivery,
        totals,
        [f"Status: {view.status.value}"],
    )


def _invoice(
    view: OrderView,
    bill: Party,
    ship: Party,
    delivery: str,
    date: str,
    totals: list[tuple[str, str]],
) -> Document:
    """The invoice bills what was charged: a parcel cancelled before it was charged is listed
    apart and taken off the total (a corrected invoice); refunds are on the credit note."""
    t = view.totals
    number = view.order_id.removeprefix("SO-")
    units, uncharged = _uncharged(view)
    billed = {ln.sku: ln.quantity - units.get(ln.sku, 0) for ln in view.lines}
    sections = [Section("Items", _rows(view.lines, billed))]
    notes = [f"Payment: {view.payment_method.value}"]
    title = "Invoice"
    if units:
        title = "Corrected invoice"
        sections.append(Section("Cancelled, not charged", _rows(view.lines, units)))
        totals = [
            *totals[:-1],
            ("Order total", _money(t.total, t.currency)),
            ("Cancelled, not charged", f"-{_money(uncharged, t.currency)}"),
            ("Total", _money(t.total - uncharged, t.currency)),
        ]
        notes.append("Corrects the invoice: cancelled goods that were never charged are not billed")
    paid = sum((p.captured for p in view.payments), Decimal("0.00"))
    totals.append(("Paid", _money(paid, t.currency)))
    books = view.books
    if books.refunded:
        totals += [
            (f"Refunded (credit note CN-{number})", f"-{_money(books.refunded, t.currency)}"),
            ("Paid and kept", _money(books.kept + books.credit, t.currency)),
        ]
    return Document(
        title,
        f"INV-{number}",
        view.order_id,
        date,
        [bill, ship],
        ["SKU", "Item", "Qty", "Unit price", "Amount"],
        sections,
        delivery,
        totals,
        notes,
    )


def to_html(doc: Document) -> str:
    """The document as a web page; every text from the order is escaped."""
    return _templates.get_template("document.html").render(doc=doc)


def _latin1(text: str) -> str:
    # The PDF's built-in fonts cover Latin-1; other characters print as '?' (the HTML
    # version shows them as they are).
    return text.encode("latin-1", "replace").decode("latin-1")


def to_pdf(doc: Document) -> bytes:
    """The document as a PDF."""
    pdf = FPDF()
    pdf.set_title(_latin1(f"{doc.title} {doc.number}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _latin1(doc.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(
        0,
        6,
        _latin1(f"{doc.number} - order {doc.order_id} - {doc.date}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    if doc.delivery:
        pdf.cell(0, 6, _latin1(doc.delivery), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for party in doc.parties:
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 6, _latin1(party.label), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for line in party.lines:
            if line:
                pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    widths = [45, 65, 20, 30, 30][: len(doc.columns)]
    if len(doc.columns) == 3:
        widths = [50, 100, 30]
    for section in doc.sections:
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(0, 8, _latin1(section.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "B", 9)
        for w, h in zip(widths, doc.columns, strict=True):
            pdf.cell(w, 6, _latin1(h), border="B")
        pdf.ln()
        pdf.set_font("Helvetica", "", 9)
        for row in section.rows:
            for i, (w, cell) in enumerate(zip(widths, row, strict=True)):
                pdf.cell(w, 6, _latin1(cell)[:60], align="R" if i >= 2 else "L")
            pdf.ln()
    if doc.totals:
        pdf.ln(2)
        for label, amount in doc.totals:
            pdf.set_font("Helvetica", "B" if label == "Total" else "", 10)
            pdf.cell(150, 6, _latin1(label), align="R")
            pdf.cell(40, 6, _latin1(amount), align="R", new_x="LMARGIN", new_y="NEXT")
    for note in doc.notes:
        pdf.set_font("Helvetica", "", 9)
        pdf.cell(0, 6, _latin1(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
