"""The performance run's printed tables and its summary of targets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass
class Table:
    """One printed table: a title, a header, rows of text, and a line under it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""

    def as_json(self) -> dict[str, object]:
        return {"title": self.title, "header": self.header, "rows": self.rows, "note": self.note}


def render(table: Table) -> str:
    """Columns padded to their widest cell; numbers (and missing values) aligned right, except
    in the first column, which names the row."""
    widths = [
        max(len(row[i]) if i < len(row) else 0 for row in [table.header, *table.rows])
        for i in range(len(table.header))
    ]

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(w) if i and _numeric(cell) else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  ".join(padded).rstrip()

    out = [table.title, line(table.header), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in table.rows]
    if table.note:
        out.append(table.note)
    return "\n".join(out)


def _numeric(cell: str) -> bool:
    head = cell.split(" ")[0].replace(",", "").replace("%", "").lstrip("-")
    return cell == "-" or head.replace(".", "", 1).isdigit()


def number(value: float, digits: int = 1, unit: str = "") -> str:
    """A value with thousands separators; '-' when it is missing (NaN)."""
    if math.isnan(value):
        return "-"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


@dataclass
class Target:
    """A measured value against its target: at most (`le`), at least (`ge`) or exactly (`eq`)
    the bound."""

    measure: str
    value: float
    bound: float
    unit: str = ""
    sense: Literal["le", "ge", "eq"] = "le"
    digits: int = 1

    @property
    def met(self) -> bool | None:
        """None when nothing was measured."""
        if math.isnan(self.value):
            return None
        if self.sense == "eq":
            return self.value == self.bound
        return self.value <= self.bound if self.sense == "le" else self.value >= self.bound

    def row(self) -> list[str]:
        sign = {"le": "≤", "ge": "≥", "eq": "="}[self.sense]
        met = {True: "yes", False: "NO", None: "no data"}[self.met]
        bound = number(self.bound, self.digits, self.unit)
        return [self.measure, number(self.value, self.digits, self.unit), f"{sign} {bound}", met]

    def as_json(self) -> dict[str, object]:
        return {
            "measure": self.measure,
            "value": None if math.isnan(self.value) else self.value,
            "target": self.bound,
            "unit": self.unit,
            "sense": self.sense,
            "met": self.met,
        }


def summary_table(targets: list[Target], informative: list[list[str]]) -> Table:
    """Every target with whether it was met, then the measures that have no target."""
    rows = [t.row() for t in targets] + [[m, v, "-", "-"] for m, v in informative]
    return Table("Summary", ["measure", "value", "target", "met?"], rows)
