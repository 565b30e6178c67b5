"""A stand-in's background work: rounds of it, sleeping between them until poked or due."""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)


class BackgroundLoop:
    """Runs `_round` again and again on the running event loop; each round says how long the
    loop may sleep, and `poke` cuts the sleep short."""

    name = "background-loop"
    # The pause after a round that failed, so a bad row does not spin the loop.
    idle_seconds = 1.0

    def __init__(self) -> None:
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke(self) -> None:
        """Make the loop look at the state again now."""
        if self._wake is not None:
            self._wake.set()

    async def _round(self) -> float:
        """Do what is due; return how long to sleep."""
        raise NotImplementedError

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                delay = await self._round()
            except Exception:
                # One bad row must not stop the work on every other.
                log.exception("%s round failed", self.name)
                delay = self.idle_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
