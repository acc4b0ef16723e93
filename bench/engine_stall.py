"""How long the rest of a process waits for the engine: a task beside N every-second jobs
sleeps 1 ms at a time, and the gaps between its wake-ups are what a running handler, the
dashboard or a heartbeat sender would wait (real clock, in-memory store).

    .venv/bin/python -m bench.engine_stall --jobs 10000 --seconds 8
    .venv/bin/python -m bench.engine_stall --jobs 10000 --no-ahead   # every instant at its time

Prints the gaps' p50, p99 and max, the five longest with where in the second they ended,
and the garbage collections longer than 5 ms (the usual cause of the longest gaps).
`--no-ahead` raises `agentcron.engine.ahead.MIN_FIRES` so that no instant is claimed ahead.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from agentcron import Scheduler
from agentcron.engine import ahead
from agentcron.handlers import RunContext

SETTLE_S = 2


def collector_timer(into: list[tuple[float, int, float]]) -> Any:
    """A `gc.callbacks` entry that records each collection over 5 ms: (seconds, generation,
    fraction of the wall-clock second it ended in)."""
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (spent := time.perf_counter() - started[0]) > 0.005:
            into.append((spent, info["generation"], time.time() % 1))

    return timed


async def stalls(
    jobs: int, seconds: int, collections: list[tuple[float, int, float]]
) -> tuple[list[float], list[tuple[float, float]]]:
    """The gaps between 1 ms sleeps (seconds) and the five longest (gap, second fraction);
    the collections over 5 ms meanwhile go into `collections`."""

    async def job(ctx: RunContext) -> None:
        return None

    sched = Scheduler("memory://", node_id="bench")
    for i in range(jobs):
        sched.add_job(f"job-{i}", trigger="* * * * * *", handler=job)
    gaps: list[float] = []
    longest: list[tuple[float, float]] = []
    async with sched:
        await sched.flush()
        await asyncio.sleep(SETTLE_S)
        timer = collector_timer(collections)
        gc.callbacks.append(timer)
        end = time.monotonic() + seconds
        last = time.monotonic()
        while last < end:
            await asyncio.sleep(0.001)
            now = time.monotonic()
            gaps.append(now - last)
            longest.append((now - last, time.time() % 1))
            longest = sorted(longest, reverse=True)[:5]
            last = now
        gc.callbacks.remove(timer)
        await sched.stop(grace_s=1)
    return gaps, longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--no-ahead", action="store_true")
    opts = parser.parse_args()
    if opts.no_ahead:
        ahead.MIN_FIRES = 1 << 62
    collections: list[tuple[float, int, float]] = []
    gaps, longest = asyncio.run(stalls(opts.jobs, opts.seconds, collections))
    gaps.sort()
    ms = [1e3 * gaps[len(gaps) // 2], 1e3 * gaps[int(len(gaps) * 0.99)], 1e3 * gaps[-1]]
    mode = "no instant claimed ahead" if opts.no_ahead else "crowded instants claimed ahead"
    print(f"{opts.jobs:,} jobs, {mode}: gap p50 {ms[0]:.1f} ms, p99 {ms[1]:.1f}, max {ms[2]:.1f}")
    print("longest:", ", ".join(f"{1e3 * g:.1f} ms at .{int(1e3 * at):03d} s" for g, at in longest))
    print(
        "collections > 5 ms:",
        ", ".join(f"gen {g} {1e3 * d:.1f} ms at .{int(1e3 * at):03d} s" for d, g, at in collections)
        or "none",
    )


if __name__ == "__main__":
    main()
