"""Helpers shared by the handler tests: a run context, and waiting for real processes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import psutil

from agentcron.handlers import RunContext

#: Upper bound for any real wait in these tests (processes starting, files appearing).
WAIT_LIMIT_S = 10.0


def make_context(job_id: str = "job-1", attempt: int = 1) -> RunContext:
    return RunContext(
        job_id=job_id,
        run_id="run-1",
        scheduled_for=datetime(2026, 3, 8, 6, 0, tzinfo=UTC),
        attempt=attempt,
        lateness_s=0.0,
        node_id="node-a",
        logger=logging.getLogger(f"agentcron.test.{job_id}"),
    )


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds; fail the test after WAIT_LIMIT_S seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_LIMIT_S
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)  # polls a real process, bounded above (noqa: sleep-ok)


def descendants() -> list[psutil.Process]:
    """Live (non-zombie) descendants of the test process."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def still_alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of `procs` that still run (the same processes: recycled pids do not count)."""
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            continue
    return alive
