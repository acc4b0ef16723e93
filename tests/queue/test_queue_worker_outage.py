"""A worker through a backend outage: it keeps trying, waiting longer each time up to a cap,
logs the outage when it begins and when it ends, and loses nothing."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from queue_testlib import T0

from agentcron.queue import Job, Worker, open_queue
from agentcron.queue.worker import MAX_RETRY_WAIT_S
from agentcron.testing import VirtualClock


class OutageBackend:
    """A real SQLite queue whose `exchange` fails `failures` times before it answers (the
    one seam: a `WorkerBackend` wrapping the real one)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.tries: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def exchange(self, *args: Any, **kwargs: Any) -> Any:
        self.tries.append(self.inner.clock.monotonic())
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return await self.inner.exchange(*args, **kwargs)


async def test_a_worker_waits_longer_after_each_failure_and_logs_the_outage_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock(T0)
    q = open_queue(f"sqlite:///{tmp_path}/q.db", "jobs", clock=clock)
    job_id = await q.add("send", {})
    backend = OutageBackend(q, failures=9)
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    worker = Worker(backend, handler, poll_s=0.2)
    caplog.set_level(logging.DEBUG, logger="agentcron.queue")
    task = asyncio.create_task(worker.run(burst=True))
    for _ in range(1000):
        if task.done():
            break
        await clock.advance(0.5)
    await task
    await q.close()
    # Before: a try every 0.2 s for as long as the outage lasted, each with a warning.
    # Each gap is the wait after the failure plus the idle loop's own poll (0.2 s).
    gaps = [round(b - a - 0.2, 6) for a, b in pairwise(backend.tries[:10])]
    assert gaps == [0.2, 0.4, 0.8, 1.6, 3.2, MAX_RETRY_WAIT_S, 5.0, 5.0, 5.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "queue jobs: backend error, retrying until it answers: disk I/O error",
        "queue jobs: backend answers again after 9 failed attempt(s)",
    ]
    assert ran == [job_id]
