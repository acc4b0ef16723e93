"""Job handlers imported by worker processes in the process tests (by job name).

Each run appends ``"<job id> <pid> <attempt>"`` to the file named by ``QUEUE_TEST_LOG``
(``O_APPEND`` writes of one short line are atomic, so several processes can share it).
"""

from __future__ import annotations

import asyncio
import os

from agentcron.queue import Job


def _record(job: Job) -> None:
    line = f"{job.id} {os.getpid()} {job.attempt}\n".encode()
    fd = os.open(os.environ["QUEUE_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def record(job: Job) -> str:
    """Record the run and finish after a short pause (so other processes get a share)."""
    _record(job)
    await asyncio.sleep(job.data.get("pause_s", 0) if isinstance(job.data, dict) else 0)
    return job.id


async def hang_first(job: Job) -> str:
    """Record the run; the first attempt hangs (until the process is killed)."""
    _record(job)
    if job.attempt == 1:
        await asyncio.Event().wait()
    return "second time lucky"


FIRES: list[tuple[str, int]] = []


async def count_fire(ctx: object) -> None:
    """A scheduled-job handler (engine signature): records (occurrence key, attempt)."""
    FIRES.append((ctx.occurrence_key, ctx.attempt))  # type: ignore[attr-defined]


async def fail_first_fire(ctx: object) -> None:
    """Fails the first attempt of each fire, succeeds after."""
    FIRES.append((ctx.occurrence_key, ctx.attempt))  # type: ignore[attr-defined]
    if ctx.attempt == 1:  # type: ignore[attr-defined]
        raise RuntimeError("first attempt fails")
