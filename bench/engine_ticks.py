"""Where a tick's lateness comes from: each second's fires, first to last, and the garbage
collections inside that second, for agentcron and the heapq baseline on the real clock.

`bench.engine_bench` reports one p99 over all seconds. This prints, per measured second,
the lateness at the first fire and at the 25/50/75/90/99 % and last fire (in start order),
then the collections that ran in that second: how many, their total ms, and each full
one (ms). It answers "is the p99 the tick's length, or a pause inside it?".

    .venv/bin/python -m bench.engine_ticks --jobs 10000 --seconds 8

What it showed (2026-11-26, 10,000 jobs): agentcron starts its first fire 1-2 ms after the
second and its last 117-145 ms after it, linearly in between (the tick is the p99); the
baseline starts its first fire 31-65 ms late (it creates every task before running any)
and its last 45-80 ms late. A full collection (15-25 ms) lands in about one second in eight.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Callable, Coroutine
from typing import Any

from bench import engine_bench

QUANTILES = (0.25, 0.5, 0.75, 0.9, 0.99)
FIRES: dict[str, Callable[[int, int], Coroutine[Any, Any, dict[str, float]]]] = {
    "agentcron": engine_bench.fire_agentcron,
    "baseline": engine_bench.fire_baseline,
}


class Collections:
    """Each garbage collection's wall-clock start, duration and generation."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float, int]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.time()
        else:
            self.seen.append((self._started, time.time() - self._started, info["generation"]))

    def within(self, second: float) -> str:
        mine = [(d, g) for s, d, g in self.seen if second <= s < second + 1]
        full = ", ".join(f"{1000 * d:.1f}" for d, g in mine if g == 2)
        return f"{len(mine)} in {1000 * sum(d for d, _ in mine):.1f} ms" + (
            f"; full: {full} ms" if full else ""
        )


def measure(lib: str, jobs: int, seconds: int) -> None:
    """Run one library's every-second jobs, keeping each fire's (second, lateness)."""
    fires: list[tuple[float, float]] = []
    recorder = engine_bench.Recorder

    def fire(self: engine_bench.Recorder, scheduled_ts: float | None = None) -> None:
        now = time.time()
        if scheduled_ts is not None and self.window[0] <= scheduled_ts < self.window[1]:
            fires.append((scheduled_ts, now - scheduled_ts))

    collections = Collections()
    recorder.fire = fire  # type: ignore[method-assign]
    gc.callbacks.append(collections)
    try:
        asyncio.run(FIRES[lib](jobs, seconds))
    finally:
        gc.callbacks.remove(collections)
    by_second: dict[float, list[float]] = {}
    for second, lateness in fires:  # in start order
        by_second.setdefault(second, []).append(lateness)
    print(f"\n{lib}, {jobs:,} jobs: lateness ms of the first, 25/50/75/90/99 % and last fire")
    print("| second | first | " + " | ".join(f"{q:.0%}" for q in QUANTILES) + " | last | GC |")
    print("|---:" * (3 + len(QUANTILES)) + "|---|")
    for second in sorted(by_second):
        late = by_second[second]
        marks = [late[0], *(late[max(0, int(q * len(late)) - 1)] for q in QUANTILES), late[-1]]
        cells = " | ".join(f"{1000 * m:.1f}" for m in marks)
        print(f"| {int(second) % 100} | {cells} | {collections.within(second)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--libs", nargs="*", default=list(FIRES), choices=list(FIRES))
    opts = parser.parse_args()
    for lib in opts.libs:
        measure(lib, opts.jobs, opts.seconds)


if __name__ == "__main__":
    main()
