"""Every saved history replays on today's workflow code: in-flight orders survive deploys."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from orderflow.worker import WORKFLOWS
from workflows import contract as c
from workflows import purchase_contract as pc

HISTORIES = sorted((Path(__file__).parent.parent / "histories").glob("*.json"))


def test_there_are_histories_for_each_workflow_type() -> None:
    assert {p.name.split("_")[0] for p in HISTORIES} >= {
        "order",
        "return",
        "shipment",
        "consolidation",
        "purchase",
    }
    # Orders from before the lifecycle-v2 patch must keep replaying beside new ones.
    assert any(p.stem.endswith("_v2") for p in HISTORIES)
    assert any(p.stem.startswith("order_") and not p.stem.endswith("_v2") for p in HISTORIES)


def _patches(path: Path) -> set[str]:
    events = json.loads(path.read_text())["events"]
    return {
        json.loads(base64.b64decode(payload["data"]))["id"]
        for e in events
        if e.get("markerRecordedEventAttributes", {}).get("markerName") == "core_patch"
        for payload in e["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"]
    }


PATCHES = {
    "order_": (
        c.PATCH_LIFECYCLE_V2,
        c.PATCH_SPLIT_SHIPMENTS,
        c.PATCH_CONTACT_SEARCH,
        c.PATCH_HOLD_BEFORE_PICKING,
        c.PATCH_REAUTHORIZE_BEFORE_CONFIRMED,
        c.PATCH_PARCEL_KNOWN_BEFORE_START,
        c.PATCH_MAIL_AFTER_COMMIT,
        c.PATCH_MAIL_WITH_NEXT_TASK,
        c.PATCH_EVERY_CHANGE_SO_FAR,
        c.PATCH_SAFE_SIGNALS,
        c.PATCH_PAYMENT_ONCE,
        c.PATCH_AFTER_SALES_MONEY,
    ),
    "shipment_": (c.PATCH_PARCEL_TRACKING,),
    "consolidation_": (c.PATCH_PARCEL_TRACKING,),
    "purchase_order_": (pc.PATCH_PO_WRITES_AFTER_COMMIT,),
    "return_": (c.PATCH_RETURN_WRITES_AFTER_COMMIT,),
}


@pytest.mark.parametrize("prefix", sorted(PATCHES))
def test_every_patch_replays_both_ways(prefix: str) -> None:
    """Each workflow.patched() change has a history that took it and one from before."""
    found = [_patches(p) for p in HISTORIES if p.stem.startswith(prefix)]
    for patch in PATCHES[prefix]:
        assert any(patch in patches for patches in found), patch
        assert any(patch not in patches for patches in found), patch


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
