"""Shared pieces of the queue tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agentcron.events import Event, EventBus
from agentcron.queue import Queue, Worker
from agentcron.testing import VirtualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
#: Virtual seconds per step while a SQLite test drains a worker; bounded by `max_s`.
_STEP_S = 0.05


@dataclass
class Env:
    """A queue under test with the means to let time pass on its backend."""

    kind: str
    queue: Queue
    url: str
    clock: VirtualClock | None
    bus: EventBus
    events: list[Event] = field(default_factory=list)

    def now(self) -> float:
        if self.clock is not None:
            return self.clock.monotonic()
        return asyncio.get_running_loop().time()

    async def advance(self, seconds: float) -> None:
        if self.clock is not None:
            await self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)  # Redis delays are real time (noqa: sleep-ok)

    async def drain(self, worker: Worker, *, max_s: float = 20.0) -> None:
        """Run `worker` in burst mode until the queue is drained (time passing as needed)."""
        task = asyncio.create_task(worker.run(burst=True))
        if self.clock is None:
            await asyncio.wait_for(task, max_s)
            return
        for _ in range(int(max_s / _STEP_S)):
            if task.done():
                break
            await self.clock.advance(_STEP_S)
        assert task.done(), f"worker still running after {max_s} virtual seconds"
        await task

    async def published(self) -> list[Event]:
        await self.bus.drain()
        return list(self.events)


def names(jobs: list[Any]) -> list[str]:
    return [job.name for job in jobs]
