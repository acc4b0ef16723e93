"""CPU per fire of the engine on a virtual clock: the steadier instrument for before/after.

`bench.engine_bench` measures lateness and CPU on the real clock, where a shared machine
moves CPU % by 20-30 % between two runs of the same code. This measures only the engine's
own work: N jobs firing every second on `VirtualClock`, advanced one second at a time and
drained, for `--seconds` seconds after a 3-second warm-up; the result is process CPU time
divided by the fires. No timers, no idle time, no handler work beyond counting. It also
prints the garbage collections per generation over those seconds (the first round's).

    .venv/bin/python -m bench.engine_cpu --jobs 10000 --seconds 10 --rounds 5
    .venv/bin/python -m bench.engine_cpu --lib baseline   # the heapq baseline, the same way

`--lib baseline` runs `bench.engine_bench`'s heapq + asyncio baseline on the same virtual
seconds (a float clock moved one second at a time, each second's tasks run to their end):
the issue's CPU goal (at most 2x the baseline) measured without timers or idle time.

Compare two versions by running each from its own checkout (a git worktree on
`PYTHONPATH`) alternately, and compare the minimum of each: noise only ever adds time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agentcron import Scheduler
from agentcron.handlers import RunContext
from agentcron.testing import VirtualClock

WARM_UP_S = 3


async def cpu_per_fire_us(jobs: int, seconds: int) -> tuple[float, list[int]]:
    """CPU µs per fire, and the garbage collections per generation over the same seconds
    (deterministic for one version: the instrument that showed a full collection being
    forced by each job's dict of active runs)."""
    clock = VirtualClock(datetime(2026, 3, 1, tzinfo=UTC))
    fires = 0

    async def count(ctx: RunContext) -> None:
        nonlocal fires
        fires += 1

    sched = Scheduler("memory://", node_id="bench", clock=clock)
    for i in range(jobs):
        sched.add_job(f"job-{i}", trigger="* * * * * *", handler=count)
    async with sched:
        await sched.flush()
        for _ in range(WARM_UP_S):
            await clock.advance(1)
            await sched.drain()
        fires = 0
        gc0 = [g["collections"] for g in gc.get_stats()]
        cpu0 = time.process_time()
        for _ in range(seconds):
            await clock.advance(1)
            await sched.drain()
        cpu1 = time.process_time()
        collections = [g["collections"] - c for g, c in zip(gc.get_stats(), gc0, strict=True)]
        await sched.stop(grace_s=0)
    if fires != jobs * seconds:
        raise SystemExit(f"expected {jobs * seconds} fires, saw {fires}")
    return 1e6 * (cpu1 - cpu0) / fires, collections


async def baseline_cpu_per_fire_us(jobs: int, seconds: int) -> tuple[float, list[int]]:
    """`cpu_per_fire_us` for the heapq baseline of `bench.engine_bench` (`Baseline.run`'s
    loop body, on virtual seconds)."""
    heap: list[tuple[float, int, Callable[[float], Any], float]] = []
    tasks: set[asyncio.Task[Any]] = set()
    fires = 0

    async def count(due: float) -> None:
        nonlocal fires
        fires += 1

    for i in range(jobs):
        heapq.heappush(heap, (1.0, i, count, 1.0))
    now = 0.0

    async def one_second() -> None:
        nonlocal now
        now += 1.0
        while heap and heap[0][0] <= now:
            due, job_id, fn, period = heapq.heappop(heap)
            task = asyncio.ensure_future(fn(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            heapq.heappush(heap, (due + period, job_id, fn, period))
        while tasks:
            await asyncio.sleep(0)

    for _ in range(WARM_UP_S):
        await one_second()
    fires = 0
    gc0 = [g["collections"] for g in gc.get_stats()]
    cpu0 = time.process_time()
    for _ in range(seconds):
        await one_second()
    cpu1 = time.process_time()
    collections = [g["collections"] - c for g, c in zip(gc.get_stats(), gc0, strict=True)]
    if fires != jobs * seconds:
        raise SystemExit(f"expected {jobs * seconds} fires, saw {fires}")
    return 1e6 * (cpu1 - cpu0) / fires, collections


MEASURES = {"agentcron": cpu_per_fire_us, "baseline": baseline_cpu_per_fire_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lib", choices=sorted(MEASURES), default="agentcron")
    opts = parser.parse_args()
    measure = MEASURES[opts.lib]
    rounds = [asyncio.run(measure(opts.jobs, opts.seconds)) for _ in range(opts.rounds)]
    results = [cpu for cpu, _ in rounds]
    shown = ", ".join(f"{r:.2f}" for r in results)
    print(f"{opts.lib}, {opts.jobs:,} jobs: CPU per fire {min(results):.2f} µs (min of {shown})")
    young, middle, full = rounds[0][1]
    print(f"garbage collections in {opts.seconds} s: {young} young, {middle} middle, {full} full")


if __name__ == "__main__":
    main()
