"""Printable documents of an order: confirmation, invoice and packing slip, as HTML and PDF."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, select_autoescape

from models.order import Address, OrderView

KINDS = ("confirmation", "invoice", "packing-slip")
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
    rows = [
        [ln.sku, ln.name, str(ln.quantity), f"{ln.unit_price}", f"{ln.line_total}"]
        for ln in view.lines
    ]
    totals = [
        ("Subtotal", f"{t.subtotal} {t.currency}"),
        ("Discount", f"-{t.discount} {t.currency}"),
        (f"Shipping ({view.delivery.value})", f"{t.shipping} {t.currency}"),
        ("Tax", f"{t.tax} {t.currency}"),
        ("Total", f"{t.total} {t.currency}"),
    ]
    contact = [view.customer.name, view.customer.email, view.customer.phone]
    customer = Party("Customer", [x for x in contact if x])
    if kind == "invoice":
        bill = Party("Bill to", _address(view.bill_to or view.ship_to))
        paid = sum((p.captured for p in view.payments), Decimal("0.00"))
        return Document(
            "Invoice",
            f"INV-{view.order_id.removeprefix('SO-')}",
            view.order_id,
            date,
            [bill, ship],
            ["SKU", "Item", "Qty", "Unit price", "Amount"],
            [Section("Items", rows)],
            delivery,
            [*totals, ("Paid", f"{paid} {t.currency}")],
            [f"Payment: {view.payment_method.value}"],
        )
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
