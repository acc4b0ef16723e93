"""`QueueSet`: the queues the dashboard shows, opened by name on one backend URL.

The names are those given (`agentcron dashboard --queue NAME`, `agentcron run` config) plus
every queue a job dispatches to (`Job.queue`), so a queue shows up as soon as a job uses it.
Queues are opened lazily with `agentcron.queue.open_queue` and closed with the set.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from agentcron.clock import Clock
from agentcron.dashboard import views
from agentcron.dashboard.protocol import QueueLike, SchedulerLike
from agentcron.events import EventBus

__all__ = ["QueueSet"]


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
