"""A dev server whose data file predates a search attribute gets it when the stack starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from orderflow.embedded import stop_process, temporal_binary, wait_for_temporal
from tests.integration.conftest import free_port
from workflows.contract import SEARCH_ATTRIBUTES


def bare_dev_server(db_file: Path, port: int) -> subprocess.Popen[bytes]:
    """A dev server started without --search-attribute, as a data file from an older release."""
    return subprocess.Popen(
        [
            *(temporal_binary(), "server", "start-dev", "--headless", "--port", str(port)),
            *("--db-filename", str(db_file), "--log-level", "error"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_missing_search_attributes_are_registered(tmp_path: Path) -> None:
    port = free_port()
    proc = bare_dev_server(tmp_path / "temporal.db", port)
    try:
        address = f"127.0.0.1:{port}"
        await wait_for_temporal(address, proc)
        client = await Client.connect(address)
        known = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="default")
        )
        for key in SEARCH_ATTRIBUTES:
            assert known.custom_attributes[key.name] == int(key.indexed_value_type), key.name
    finally:
        stop_process(proc)
