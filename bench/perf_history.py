"""What a workflow costs the server, read from its history: workflow tasks, activity tasks,
timers, signals, markers and search-attribute upserts per workflow, averaged over a sample."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

# The events counted, by metric key, with the name the table shows.
COUNTED = {
    "wft": ("workflow tasks", EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
    "activities": ("activity tasks", EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
    "timers": ("timers", EventType.EVENT_TYPE_TIMER_STARTED),
    "signals": ("signals", EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
    "markers": ("markers (local activities, patches)", EventType.EVENT_TYPE_MARKER_RECORDED),
    "upserts": (
        "search-attribute upserts",
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    ),
    "events": ("events in all", None),
}


async def history_shape(
    client: Client, workflow_ids: Sequence[str], sample: int = 30, seed: int = 7
) -> dict[str, float]:
    """Per workflow, the mean count of each COUNTED event, by its key."""
    chosen = random.Random(seed).sample(list(workflow_ids), min(sample, len(workflow_ids)))
    if not chosen:
        return {}
    histories = await asyncio.gather(
        *(client.get_workflow_handle(wid).fetch_history() for wid in chosen)
    )
    totals: Counter[str] = Counter()
    for history in histories:
        types = Counter(e.event_type for e in history.events)
        for key, (_, event_type) in COUNTED.items():
            totals[key] += len(history.events) if event_type is None else types[event_type]
    return {key: n / len(histories) for key, n in totals.items()}
