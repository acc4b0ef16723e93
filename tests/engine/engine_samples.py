"""Module-level handlers the engine tests refer to by reference ("engine.engine_samples:..."),
so that jobs using them can be stored and restored, and run in a child process."""

from __future__ import annotations

import time

from agentcron.handlers import RunContext

#: Calls of `record`, in order (job id, scheduled_for ISO, attempt).
CALLS: list[tuple[str, str, int]] = []


async def record(ctx: RunContext) -> str:
    CALLS.append((ctx.job_id, ctx.scheduled_for.isoformat(), ctx.attempt))
    return "ok"


def sleep_for_a_minute() -> None:
    time.sleep(60)  # killed by the engine's timeout in the child process (noqa: sleep-ok)


def exit_hard() -> None:
    import os

    os._exit(3)  # the child process dies without cleaning up
