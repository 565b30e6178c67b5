"""Connecting to Temporal with the pydantic data converter every process must share."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from orderflow.settings import Settings


async def connect(settings: Settings, lazy: bool = False) -> Client:
    """A Temporal client for the configured address and namespace; a lazy one connects on its
    first call (and on each call after, until the server answers)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=lazy,
    )
