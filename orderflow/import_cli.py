"""`orderflow import FILE`: send an order file to the API in parts, with a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

import httpx

from models.order_import import ImportRow, parse

# Orders per request: each part stays well under the API's body size limit.
BATCH = 40
# Exit code when the file was read but some orders were refused.
SOME_REJECTED = 3


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} orders"


def run_import(
    path: Path,
    api_url: str,
    fmt: str | None = None,
    batch: int = BATCH,
    out: IO[str] = sys.stdout,
    progress: IO[str] = sys.stderr,
    headers: dict[str, str] | None = None,
) -> int:
    """Import the file through the API; prints a summary and returns the exit code."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    rows = parse(path.read_text(encoding="utf-8-sig"), fmt)
    bad = [r for r in rows if r.error]
    good = [r for r in rows if not r.error]
    created = duplicates = 0
    rejections: list[tuple[list[int], str]] = [(r.lines, r.error) for r in bad]
    with httpx.Client(base_url=api_url, timeout=120, headers=headers or {}) as client:
        for start in range(0, len(good), batch):
            part = good[start : start + batch]
            result = _send(client, part)
            created += result["created"]
            duplicates += result["duplicates"]
            for rej in result["rejections"]:
                # The API numbers the lines of the part it got; give back the file's lines.
                rejections.append((part[rej["lines"][0] - 1].lines, rej["reason"]))
            progress.write("\r" + _bar(min(start + batch, len(good)), len(good)))
            progress.flush()
    progress.write("\n")
    out.write(f"created     {created}\nduplicates  {duplicates}\nrejected    {len(rejections)}\n")
    for lines, reason in sorted(rejections):
        where = f"line {lines[0]}" if len(lines) == 1 else f"lines {lines[0]}-{lines[-1]}"
        out.write(f"  {where}: {reason}\n")
    return SOME_REJECTED if rejections else 0


def _send(client: httpx.Client, part: list[ImportRow]) -> dict[str, Any]:
    body = "\n".join(json.dumps(r.order) for r in part)
    r = client.post("/imports", params={"format": "jsonl"}, content=body.encode())
    if r.status_code != 200:
        raise SystemExit(f"the API refused the import: {r.status_code} {r.text}")
    return r.json()
