"""The workflow sandbox loads a workflow's own module afresh for every workflow it starts; what
that module imports through `imports_passed_through` must come from the host instead, or every
new workflow pays for importing (and building the pydantic models of) the contract again."""

from __future__ import annotations

import importlib.machinery
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from orderflow.worker import WORKFLOWS

HISTORY = Path(__file__).parent.parent / "histories" / "order_completed_v4.json"
# A workflow type's own module is reloaded on purpose (its state stays per workflow).
RELOADED = {"workflows", *(w.__module__ for w in WORKFLOWS)}


async def test_only_the_workflow_modules_are_loaded_per_workflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: Counter[str] = Counter()
    exec_module = importlib.machinery.SourceFileLoader.exec_module

    def counting(self: importlib.machinery.SourceFileLoader, module: ModuleType) -> None:
        loaded[module.__name__] += 1
        exec_module(self, module)

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "exec_module", counting)
    text = HISTORY.read_text()
    histories = [WorkflowHistory.from_json(f"order-{i}", text) for i in range(3)]
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=pydantic_data_converter)
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
        assert result.replay_failure is None
    ours = {
        name: n
        for name, n in loaded.items()
        if name.split(".")[0] in {"workflows", "models", "activities", "providers", "orderflow"}
    }
    assert set(ours) <= RELOADED, f"loaded again inside the sandbox: {set(ours) - RELOADED}"
    assert ours.get("workflows.order", 0) >= len(histories), "the check sees the sandbox load"
