"""Handlers the cluster test nodes run: each appends one JSON line per start/finish to the
file named by `AGENTCRON_CLUSTER_LOG` (O_APPEND, one write per line: safe across processes)."""

from __future__ import annotations

import asyncio
import json
import os

from agentcron.handlers import RunContext


def _log(ctx: RunContext, event: str) -> None:
    line = json.dumps(
        {
            "event": event,
            "node": ctx.node_id,
            "key": ctx.occurrence_key,
            "attempt": ctx.attempt,
            "run_id": ctx.run_id,
        }
    )
    fd = os.open(os.environ["AGENTCRON_CLUSTER_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def tick(ctx: RunContext) -> None:
    """A quick job: one line per run."""
    _log(ctx, "ran")


async def long(ctx: RunContext) -> None:
    """A long first attempt (the node running it gets killed); later attempts are quick."""
    _log(ctx, "start")
    if ctx.attempt == 1:
        await asyncio.sleep(120)  # a run long enough to be killed mid-way (noqa: sleep-ok)
    _log(ctx, "done")
