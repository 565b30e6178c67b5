"""The dev stack's processes: the worker as many times as the settings ask."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orderflow.devstack import SERVICES, command_of, service_names
from orderflow.settings import Settings


def test_one_worker_by_default() -> None:
    assert service_names(Settings().worker_processes) == SERVICES


def test_more_workers_run_the_worker_command_before_the_api() -> None:
    names = service_names(3)
    assert names == (
        "payment-standin",
        "carrier-standin",
        "smtp-standin",
        "worker",
        "worker-2",
        "worker-3",
        "api",
    )
    assert [command_of(n) for n in names].count("worker") == 3
    assert command_of("payment-standin") == "payment-standin"


def test_worker_processes_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERFLOW_WORKER_PROCESSES", "2")
    assert Settings().worker_processes == 2
    monkeypatch.setenv("ORDERFLOW_WORKER_PROCESSES", "0")
    with pytest.raises(ValidationError):
        Settings()
