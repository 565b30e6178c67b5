"""A py-spy speedscope profile summed up: which packages and functions the samples fall in."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.perf_table import Table, number

OURS = ("workflows", "activities", "models", "api", "providers", "orderflow", "bench")
# Matched in order against the frame's file path; the first hit names the package.
PACKAGES = (
    ("/temporalio/", "temporalio"),
    ("/sqlalchemy/", "sqlalchemy"),
    ("/psycopg", "psycopg"),
    ("/pydantic", "pydantic"),
    ("/httpx/", "httpx"),
    ("/httpcore/", "httpx"),
    ("/uvicorn/", "uvicorn"),
    ("/starlette/", "starlette / fastapi"),
    ("/fastapi/", "starlette / fastapi"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
)


def package_of(path: str) -> str:
    """A short name for where a frame's code lives."""
    for needle, name in PACKAGES:
        if needle in path:
            return name
    parts = path.replace("\\", "/").split("/")
    for top in OURS:
        if top in parts[:-1] and "site-packages" not in parts:
            return f"ours: {top}/"
    if "site-packages" in parts:
        i = parts.index("site-packages")
        return parts[i + 1] if i + 1 < len(parts) else "site-packages"
    return "python stdlib / other"


# Where an event loop or a thread hands control to the work it runs: the frames above say
# only that a loop or a thread was running.
DISPATCH = frozenset({"Handle._run", "_worker", "Thread.run"})
LOOP = frozenset({"BaseEventLoop._run_once", "BaseEventLoop.run_forever"})
GENERIC = frozenset({"Task.__step", "Task.__step_run_and_handle_result", "Context.run"})


def _below_dispatch(names: list[str]) -> list[str]:
    """The frames of the work a loop or a thread was running; a stack that ran none (the loop
    between callbacks) is only what was on top."""
    last = max((i for i, n in enumerate(names) if n in DISPATCH), default=None)
    if last is None:
        return names[-1:] if names[-1] not in LOOP else []
    return [n for n in names[last + 1 :] if n not in GENERIC]


@dataclass
class Counts:
    """Seconds of samples: per package and function on top of the stack (self), and per
    function anywhere on it (inclusive)."""

    by_package: Counter[str] = field(default_factory=Counter)
    by_function: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    total: float = 0.0


def count_samples(doc: dict[str, Any]) -> Counts:
    """Sum a speedscope document of sampled profiles (one per thread, as py-spy writes)."""
    frames = doc.get("shared", {}).get("frames", [])
    counts = Counts()

    def label(i: int) -> str:
        f = frames[i]
        return f"{f.get('name', '?')} ({Path(str(f.get('file', ''))).name}:{f.get('line', '?')})"

    for profile in doc.get("profiles", []):
        samples = profile.get("samples", [])
        weights = profile.get("weights") or [1.0] * len(samples)
        for stack, weight in zip(samples, weights, strict=False):
            if not stack:
                continue
            # Speedscope lists a stack from its root to the frame that was running.
            leaf = stack[-1]
            counts.by_package[package_of(str(frames[leaf].get("file", "")))] += weight
            counts.by_function[label(leaf)] += weight
            names = [str(frames[i].get("name", "?")) for i in stack]
            for name in set(_below_dispatch(names)):
                counts.inclusive[name] += weight
            counts.total += weight
    return counts


def hot_frames_table(path: Path, title: str, top: int = 8) -> Table:
    """Share of samples per package and function on top of the stack, and the functions
    most often anywhere on it."""
    c = count_samples(json.loads(path.read_text()))
    total = c.total or float("nan")

    def share(n: float) -> str:
        return number(100 * n / total, 1, "%")

    rows = [["self, package", name, share(n)] for name, n in c.by_package.most_common(top)]
    rows += [["self, function", name, share(n)] for name, n in c.by_function.most_common(top)]
    rows += [["inclusive", name, share(n)] for name, n in c.inclusive.most_common(top)]
    return Table(
        title,
        ["by", "where", "share"],
        rows,
        note=f"  {number(c.total, 1, 's')} of samples; the full profile: {path} "
        "(open in speedscope.app)",
    )
