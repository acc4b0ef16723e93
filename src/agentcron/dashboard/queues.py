"""`QueueSet`: the queues the dashboard shows, opened by name on one backend URL.

The names are those given (`agentcron dashboard --queue NAME`, `agentcron run` config) plus
every queue a job dispatches to (`Job.queue`), so a queue shows up as soon as a job uses it.
Queues are opened lazily with `agentcron.queue.open_queue` and closed with the set.

`queue_jobs` and `queue_job` read a queue's jobs for the API: a queue error is a 422 (bad
input) or a 503 (backend unreachable), never a 500.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi import HTTPException

from agentcron.clock import Clock
from agentcron.dashboard import schemas, views
from agentcron.dashboard.protocol import QueueLike, SchedulerLike
from agentcron.events import EventBus

__all__ = ["QueueSet", "queue_job", "queue_jobs"]


class QueueSet:
    """A `QueueSource` over `agentcron.queue` (DESIGN 2.6)."""

    def __init__(
        self,
        url: str,
        names: Iterable[str] = (),
        *,
        scheduler: SchedulerLike | None = None,
        clock: Clock | None = None,
        events: EventBus | None = None,
    ) -> None:
        self._url = url
        self._names = {n for n in names if n}
        self._scheduler = scheduler
        self._clock = clock or (scheduler.clock if scheduler is not None else None)
        self._events = events or (scheduler.events if scheduler is not None else None)
        self._open: dict[str, Any] = {}

    def names(self) -> list[str]:
        names = set(self._names) | set(self._open)
        if self._scheduler is not None:
            for job in self._scheduler.jobs():
                queue = getattr(views.inner_job(job), "queue", None)
                if isinstance(queue, str) and queue:
                    names.add(queue)
        return sorted(names)

    def get(self, name: str) -> QueueLike | None:
        if name not in self._open:
            if name not in self.names():
                return None
            from agentcron.queue import open_queue

            self._open[name] = open_queue(self._url, name, clock=self._clock, events=self._events)
        queue: QueueLike = self._open[name]
        return queue

    async def close(self) -> None:
        for queue in self._open.values():
            with contextlib.suppress(Exception):
                await queue.close()
        self._open.clear()


async def queue_jobs(
    queue: QueueLike, name: str, state: schemas.QueueJobState, offset: int, limit: int
) -> schemas.QueueJobPage:
    """A page of `queue`'s jobs in `state` (`agentcron.queue.Queue.jobs`)."""
    async with _queue_errors(name):
        # One more than asked: whether a next page exists, without counting.
        infos = await queue.jobs(state, offset=offset, limit=limit + 1)
    items = [_job_out(info) for info in infos[:limit]]
    return schemas.QueueJobPage(
        queue=name,
        state=state,
        items=items,
        has_more=len(infos) > limit,
        limit=limit,
        offset=offset,
    )


async def queue_job(queue: QueueLike, name: str, job_id: str) -> schemas.QueueJobOut:
    """One job of `queue`; 404 when it holds no such job."""
    async with _queue_errors(name):
        info = await queue.get(job_id)
    if info is None:
        raise HTTPException(404, f"unknown job {job_id!r} in queue {name!r}")
    return _job_out(info)


def _job_out(info: Any) -> schemas.QueueJobOut:
    return schemas.QueueJobOut(
        id=info.id,
        name=info.name,
        state=info.state,
        priority=info.priority,
        attempts=info.attempts,
        attempts_made=info.attempts_made,
        progress=info.progress,
        data=info.data,
        result=info.result,
        error=info.error,
        created_at=info.created_at,
        finished_at=info.finished_at,
    )


@contextlib.asynccontextmanager
async def _queue_errors(name: str) -> AsyncIterator[None]:
    from agentcron.queue.base import QueueError, QueueInputError

    try:
        yield
    except QueueInputError as exc:
        raise HTTPException(422, str(exc)) from exc
    except QueueError as exc:
        raise HTTPException(503, f"queue {name!r} unavailable: {exc}") from exc
