"""How the API answers when an update does not reach a running order, and when the order ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.order_calls import run_update


@dataclass
class _Described:
    status: WorkflowExecutionStatus


class _Handle:
    def __init__(self, status: WorkflowExecutionStatus) -> None:
        self.status = status

    async def start_update(self, *args: Any, **kwargs: Any) -> None:
        # What the server answers when the workflow task carrying the update failed or timed
        # out, and also when the workflow has completed.
        raise RPCError("workflow task failed", RPCStatusCode.FAILED_PRECONDITION, b"")

    async def describe(self) -> _Described:
        return _Described(self.status)


class _Client:
    def __init__(self, status: WorkflowExecutionStatus) -> None:
        self.status = status

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self.status)


async def _answer(status: WorkflowExecutionStatus) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await run_update(_Client(status), "SO-1", "modify_order", {})  # type: ignore[arg-type]
    return caught.value


async def test_a_lost_update_on_a_running_order_is_to_be_tried_again() -> None:
    error = await _answer(WorkflowExecutionStatus.RUNNING)
    assert (error.status, error.code) == (503, "try_again")


async def test_an_update_on_an_ended_order_is_refused() -> None:
    error = await _answer(WorkflowExecutionStatus.COMPLETED)
    assert (error.status, error.code) == (409, "closed")
