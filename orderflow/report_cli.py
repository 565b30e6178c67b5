"""`orderflow report NAME`: one report from the API, printed as readable tables or as its JSON.
A refusal (unknown report, bad dates) prints the API's reason and exits non-zero."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from orderflow.staff_cli import StaffClient, table

# Fields every report answer carries; the title line shows them.
_HEAD = ("report", "from", "to")


def render(report: dict[str, Any]) -> str:
    """A report answer as text: a title line, its single figures, then a table per list."""
    out = [f"{report.get('report', '')}  {report.get('from', '')} to {report.get('to', '')}\n"]
    tables: list[str] = []
    for key, value in report.items():
        if key in _HEAD or value is None:
            continue
        if not isinstance(value, list):
            out.append(f"{key}: {value}\n")
            continue
        heading = "" if key == "rows" else f"{key}\n"
        if not value:
            tables.append(f"\n{heading}(none)\n")
            continue
        # A column that is empty in every row does not apply to this report: leave it out.
        header = [h for h in value[0] if any(row.get(h) is not None for row in value)]
        rows = [["-" if row.get(h) is None else row[h] for h in header] for row in value]
        tables.append(f"\n{heading}{table(rows, header)}")
    return "".join(out + tables)


class ReportClient(StaffClient):
    """Fetches reports over the API and prints them."""

    def report(self, name: str, params: dict[str, Any], fmt: str = "table") -> None:
        answer = self._call(
            "GET",
            f"/reports/{quote(name, safe='')}",
            params={k: v for k, v in params.items() if v is not None},
        )
        self.out.write(json.dumps(answer, indent=2) + "\n" if fmt == "json" else render(answer))
