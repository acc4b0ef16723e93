"""The seam between the scheduler and the queues: enqueue one fire of a scheduled job.

A scheduled job with ``queue="name"`` is not run inline: at its fire time the engine calls
`dispatch_to_queue`, and a worker of that queue runs it. The queue job id is the fire's
occurrence key (``"<job_id>@<scheduled_for UTC ISO>"``), so a fire enqueued twice (two
scheduler nodes, a retry after a crash) exists once in the queue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agentcron.models import occurrence_key
from agentcron.queue.base import Backoff, Queue

__all__ = ["dispatch_to_queue"]


async def dispatch_to_queue(
    queue: Queue,
    job_id: str,
    scheduled_for: datetime,
    payload: Any = None,
    *,
    attempts: int = 1,
    backoff: Backoff | None = None,
) -> str:
    """Enqueue the fire of `job_id` scheduled for `scheduled_for`; returns the queue job id.

    The queue job is named `job_id` and carries ``{"job_id", "scheduled_for", "payload"}``
    as its data; `payload` must be JSON-serialisable. Enqueuing the same fire again adds
    nothing and returns the same id.
    """
    key = occurrence_key(job_id, scheduled_for)
    data = {"job_id": job_id, "scheduled_for": scheduled_for.isoformat(), "payload": payload}
    return await queue.add(job_id, data, job_id=key, attempts=attempts, backoff=backoff)
