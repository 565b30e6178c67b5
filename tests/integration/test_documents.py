"""Printable documents: PDF that opens and holds the order's number and totals; HTML escaped."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from pypdf import PdfReader

from api.app import create_app
from orderflow.cli import main
from tests.integration.conftest import ServerThread, free_port
from tests.integration.helpers import order_body, place, wait_status

HOSTILE = "<script>alert(1)</script> Zoë 李雷"


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


async def test_confirmation_invoice_and_packing_slip(make_stack, tmp_path: Path) -> None:
    stack = await make_stack()
    body = order_body([("SKU-TEA-001", 2), ("SKU-CUP-001", 1)])
    body["customer"]["name"] = HOSTILE
    body["ship_to"]["name"] = HOSTILE
    order = await place(stack.api, body)
    oid = order["order_id"]
    view = await wait_status(stack.api, oid, "COMPLETED")
    total = view["totals"]["total"]

    for kind, number in (
        ("confirmation", oid),
        ("invoice", f"INV-{oid[3:]}"),
        ("packing-slip", f"PS-{oid[3:]}"),
    ):
        r = await stack.api.get(f"/orders/{oid}/documents/{kind}")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        text = _pdf_text(r.content)
        assert number in text and oid in text
        assert "SKU-TEA-001" in text and "SKU-CUP-001" in text
        if kind != "packing-slip":
            assert f"{total} USD" in text
        else:
            assert view["shipments"][0]["tracking_number"] in text
        assert "Zo\u00eb" in text  # Latin-1 prints as it is
        assert "Standard delivery" in text

        page = await stack.api.get(f"/orders/{oid}/documents/{kind}", params={"format": "html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<script>" not in page.text and "&lt;script&gt;" in page.text
        assert "李雷" in page.text and number in page.text
        assert "Standard delivery" in page.text

    assert (await stack.api.get(f"/orders/{oid}/documents/receipt")).status_code == 422
    missing = await stack.api.get("/orders/SO-20260101-00000000/documents/invoice")
    assert missing.status_code == 404

    # The same document from the command line.
    server = ServerThread(create_app(stack.settings), free_port()).start()
    try:
        out = tmp_path / "invoice.pdf"
        args = [
            "print",
            oid,
            "invoice",
            "--out",
            str(out),
            "--api",
            server.url,
            "--key",
            stack.staff_key,
        ]
        await asyncio.to_thread(main, args)
        assert f"INV-{oid[3:]}" in _pdf_text(out.read_bytes())
    finally:
        server.stop()
