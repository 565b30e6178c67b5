"""Where the time goes: CPU per process tree, memory of a process tree, py-spy profiles."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bench.perf_table import Table, number


def _tree(pid: int) -> list[psutil.Process]:
    """The process and its children; a negative pid means the process alone."""
    try:
        root = psutil.Process(abs(pid))
        return [root] if pid < 0 else [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process tree so far: every live process, plus the children each has
    already reaped (PostgreSQL's finished backends end up in the postmaster's count)."""
    total = 0.0
    for p in _tree(pid):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
        if pid > 0:
            total += t.children_user + t.children_system
    return total


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children."""
    total = 0
    for p in _tree(pid):
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class CpuMeter:
    """CPU seconds each group of processes used between start() and stop()."""

    groups: dict[str, list[int]]
    before: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0
    _t0: float = 0.0

    def _read(self) -> dict[str, float]:
        return {name: sum(tree_cpu_seconds(p) for p in pids) for name, pids in self.groups.items()}

    def start(self) -> None:
        self.before = self._read()
        self._t0 = time.monotonic()

    def stop(self) -> None:
        self.wall = time.monotonic() - self._t0
        after = self._read()
        self.used = {k: max(0.0, after[k] - self.before.get(k, 0.0)) for k in after}

    def metrics(self) -> dict[str, float]:
        out = {f"cpu_s_{_key(k)}": v for k, v in self.used.items()}
        out["cpu_wall_s"] = self.wall
        return out


def _key(name: str) -> str:
    return name.replace(" ", "_").replace("-", "_")


def cpu_table(metrics: dict[str, float], groups: list[str], cores: int | None = None) -> Table:
    """CPU seconds, share of what all measured processes used, and share of the machine."""
    cores = cores or os.cpu_count() or 1
    used = {g: metrics.get(f"cpu_s_{_key(g)}", float("nan")) for g in groups}
    total = sum(v for v in used.values() if v == v)
    wall = metrics.get("cpu_wall_s", float("nan"))
    rows = []
    for g in [*groups, "total"]:
        v = total if g == "total" else used[g]
        share = 100 * v / total if total else float("nan")
        machine = 100 * v / (wall * cores) if wall == wall and wall > 0 else float("nan")
        rows.append([g, number(v, 1, "s"), number(share, 1, "%"), number(machine, 1, "%")])
    return Table(
        "CPU during the lifecycle run (our orders, not the bare workflows)",
        ["process tree", "cpu", "share", f"of {cores} cores"],
        rows,
        note=f"  over {number(wall, 1, 's')} of wall time",
    )


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class SpyRecorder:
    """py-spy sampling one process into a speedscope file, until stopped."""

    def __init__(self, pid: int, out: Path, rate: int) -> None:
        self.pid = pid
        self.out = out
        self.rate = rate
        self.log = out.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.error = ""

    def start(self) -> None:
        exe = py_spy()
        if exe is None:
            self.error = "py-spy is not installed"
            return
        self.out.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    exe,
                    "record",
                    "--pid",
                    str(self.pid),
                    "--format",
                    "speedscope",
                    "--output",
                    str(self.out),
                    "--rate",
                    str(self.rate),
                    # Without pausing the process at each sample: the profile must not be
                    # what slows the run down.
                    "--nonblocking",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        """SIGINT makes py-spy write its file and exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.out.exists():
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
            self.error = "py-spy wrote nothing: " + " / ".join(tail)
