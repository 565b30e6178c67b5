"""Staff commands over the API, with the API's own rules: `orderflow orders ...`, `orderflow
stock SKU`. Answers print as readable tables; refusals print the rule and exit non-zero."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import IO, Any

import httpx

# Exit code when the API refused the request (4xx); 2 is argparse's for a bad command line.
REFUSED = 4


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines) + "\n"


class StaffClient:
    """One API call per command; prints what came back."""

    def __init__(self, http: httpx.Client, out: IO[str] | None = None) -> None:
        self.http = http
        self.out = out or sys.stdout

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        if r.status_code >= 400:
            err = (
                r.json().get("error", {})
                if r.headers.get("content-type", "").startswith("application/json")
                else {}
            )
            self.out.write(
                f"refused ({r.status_code}) {err.get('code', '')}: {err.get('message', r.text)}\n"
            )
            raise SystemExit(REFUSED)
        return r.json()

    def orders_list(self, params: dict[str, Any]) -> None:
        page = self._call("GET", "/orders", params={k: v for k, v in params.items() if v})
        rows = [
            (
                o["order_id"],
                o["status"],
                o["customer_id"],
                o["channel"],
                f"{o['total']['amount']} {o['total']['currency']}",
                o["created_at"][:19],
            )
            for o in page["items"]
        ]
        self.out.write(table(rows, ["order", "status", "customer", "channel", "total", "placed"]))
        if page.get("next_cursor"):
            self.out.write(f"more: --cursor {page['next_cursor']}\n")

    def orders_show(self, order_id: str) -> None:
        v = self._call("GET", f"/orders/{order_id}")
        t, who, to = v["totals"], v["customer"], v["ship_to"]
        self.out.write(
            f"{v['order_id']}  {v['status']}  {v['status_reason']}\n"
            f"customer  {who['name']} ({who['id']}) {who['email']}\n"
            f"ship to   {to['line1']}, {to['city']}, {to['country']}\n"
            f"total     {t['total']} {t['currency']}\n\n"
        )
        self.out.write(
            table(
                [(ln["sku"], ln["name"], ln["quantity"], ln["line_total"]) for ln in v["lines"]],
                ["sku", "item", "qty", "amount"],
            )
        )
        if v["shipments"]:
            self.out.write(
                "\n"
                + table(
                    [
                        (s["shipment_no"] or "-", s["tracking_number"], s["warehouse"], s["status"])
                        for s in v["shipments"]
                    ],
                    ["parcel", "tracking", "warehouse", "status"],
                )
            )
        self.out.write(
            "\n"
            + table(
                [(h["at"][:19], h["actor"], h["kind"], h["detail"][:60]) for h in v["history"]],
                ["at", "actor", "step", "detail"],
            )
        )

    def orders_cancel(self, order_id: str, reason: str) -> None:
        v = self._call("POST", f"/orders/{order_id}/cancel", json={"reason": reason})
        self.out.write(f"{order_id} is {v['status']}\n")

    def orders_approve(self, order_id: str, decision: str, note: str) -> None:
        v = self._call(
            "POST", f"/orders/{order_id}/review", json={"decision": decision, "note": note}
        )
        self.out.write(f"{order_id} is {v['status']}\n")

    def orders_modify(self, order_id: str, changes: str) -> None:
        v = self._call("PATCH", f"/orders/{order_id}", json=json.loads(changes))
        self.out.write(f"{order_id} changed; it is {v['status']}\n")

    def stock(self, sku: str) -> None:
        s = self._call("GET", f"/inventory/{sku}")
        self.out.write(
            table(
                [
                    (w["warehouse"], w["on_hand"], w["reserved"], w["available"])
                    for w in s["warehouses"]
                ],
                ["warehouse", "on hand", "reserved", "available"],
            )
        )
        low = "  LOW" if s["low"] else ""
        self.out.write(
            f"available {s['available']}, safety stock {s['safety_stock']}{low}, "
            f"on order {s['on_order']}, backordered {s['backordered']}\n"
        )
