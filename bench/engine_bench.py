"""Engine benchmark: agentcron vs APScheduler 3 (AsyncIOScheduler) vs a heapq+asyncio baseline.

    .venv/bin/python -m bench.engine_bench               # 20 s per scenario (~6 minutes)
    .venv/bin/python -m bench.engine_bench --seconds 5   # quicker, noisier

`agentcron` uses its default in-memory store; `agentcron-sqlite` the SQLite store that
`agentcron run` uses, where every claim, job state and run record is committed to disk.
Each scenario runs in a fresh child process (so CPU and RSS are its own): N jobs that each
fire every second (cron `* * * * * *`, on whole seconds) for `--seconds`; each handler
records `start - scheduled second`. Reported: fire lateness p50/p99/max in ms, missed fires
(expected N x seconds minus fires seen), CPU % of one core over the window. Then 100,000
cron jobs (1,440 distinct daily expressions) are registered in a started scheduler: time to
register (and, for agentcron, until every job is also in its store; `agentcron-redis`
registers on the Redis store, against a throwaway `redis-server`), and RSS before the
first job and after the last: "RSS MB added" (after - before) is what the jobs cost, the
figure the 60 MB goal is about (the issue's baseline 13 MB is that difference too).

`--repeat R` runs every scenario R times, the libraries taking turns (agentcron, the others,
the baseline, then again), and reports the median of each run's p50, p99 and CPU %, the
largest max and all missed fires, with the range of CPU % over the runs and the ratio of
the medians to the baseline's (the CPU goal: at most 2x). One 20-second run of the baseline
moves by up to 1.8x between runs on this kind of machine (its loop sometimes wakes a little
early and goes round again), so one run's ratio says little:

    .venv/bin/python -m bench.engine_bench --jobs 1000 --repeat 5 --register 0

`--libs` fires only the libraries named (the CPU ratio needs `baseline` among them); at
10,000 jobs APScheduler 3 can take the whole 200 s a child is given:

    .venv/bin/python -m bench.engine_bench --jobs 10000 --repeat 3 --libs agentcron baseline
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import heapq
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LIBS = ("agentcron", "agentcron-sqlite", "apscheduler3", "baseline")
JOB_COUNTS = (1, 1_000, 10_000)
REGISTER_COUNT = 100_000
#: Where `helpers.redis_server` (the throwaway Redis of the tests) lives.
_TESTS_DIR = str(Path(__file__).resolve().parents[1] / "tests")


# -- measuring --------------------------------------------------------------------------
class Recorder:
    """Lateness samples (seconds) of fires inside the measuring window."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.window = (math.inf, -math.inf)

    def fire(self, scheduled_ts: float | None = None) -> None:
        now = time.time()
        due = scheduled_ts if scheduled_ts is not None else math.floor(now)
        if self.window[0] <= due < self.window[1]:
            self.samples.append(now - due)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def measure(rec: Recorder, seconds: int) -> dict[str, float]:
    """Warm up to the next whole second + 1, then measure `seconds` whole seconds."""
    start = math.floor(time.time()) + 2
    rec.window = (start, start + seconds)
    await asyncio.sleep(start - time.time())
    cpu0, wall0 = cpu_s(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, wall1 = cpu_s(), time.monotonic()
    await asyncio.sleep(1.0)  # let the last second's fires finish
    return {"cpu_pct": 100 * (cpu1 - cpu0) / (wall1 - wall0)}


# -- the three contenders: every-second jobs -------------------------------------------
async def fire_agentcron(n: int, seconds: int, store: str = "memory://") -> dict[str, float]:
    from agentcron import Scheduler
    from agentcron.handlers import RunContext

    rec = Recorder()

    async def job(ctx: RunContext) -> None:
        rec.fire(ctx.scheduled_for.timestamp())

    sched = Scheduler(store, node_id="bench")
    begin = time.monotonic()
    for i in range(n):
        sched.add_job(f"job-{i}", trigger="* * * * * *", handler=job)
    async with sched:
        await sched.flush()
        stored_s = time.monotonic() - begin  # the jobs fire while they are being stored
        out = await measure(rec, seconds)
        stopping = time.monotonic()
        await sched.stop(grace_s=1)
        stop_s = time.monotonic() - stopping  # includes writing what is still queued
    return {**out, **summarise(rec, n, seconds), "stored_s": stored_s, "stop_s": stop_s}


async def fire_agentcron_sqlite(n: int, seconds: int) -> dict[str, float]:
    """The same on the SQLite store `agentcron run` uses (every claim and run committed)."""
    with tempfile.TemporaryDirectory() as tmp:
        return await fire_agentcron(n, seconds, f"sqlite:///{tmp}/bench.db")


async def fire_apscheduler(n: int, seconds: int) -> dict[str, float]:
    from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    rec = Recorder()
    # APScheduler 3 does not pass the scheduled time to the job: take it from the
    # submission event, which is published before the job's coroutine starts.
    scheduled: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    def submitted(event: JobSubmissionEvent) -> None:
        scheduled[event.job_id].extend(t.timestamp() for t in event.scheduled_run_times)

    async def job(job_id: str) -> None:
        times = scheduled[job_id]
        rec.fire(times.popleft() if times else None)

    sched = AsyncIOScheduler(timezone="UTC")
    sched.add_listener(submitted, EVENT_JOB_SUBMITTED)
    sched.start()
    for i in range(n):
        sched.add_job(
            job,
            CronTrigger(second="*", timezone="UTC"),
            args=[f"job-{i}"],
            id=f"job-{i}",
            misfire_grace_time=30,
            coalesce=False,
            max_instances=1,
        )
    out = await measure(rec, seconds)
    sched.shutdown(wait=False)
    return {**out, **summarise(rec, n, seconds)}


class Baseline:
    """The ~40-line reference: a heap of next fire times, one asyncio loop, no policies."""

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, Callable[[float], Any], float]] = []
        self.wake = asyncio.Event()

    def add(self, job_id: int, fn: Callable[[float], Any], period_s: float) -> None:
        first = math.floor(time.time() / period_s + 1) * period_s
        heapq.heappush(self.heap, (first, job_id, fn, period_s))
        self.wake.set()

    async def run(self) -> None:
        tasks: set[asyncio.Task[Any]] = set()
        while True:
            now = time.time()
            while self.heap and self.heap[0][0] <= now:
                due, job_id, fn, period = heapq.heappop(self.heap)
                task = asyncio.ensure_future(fn(due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                heapq.heappush(self.heap, (due + period, job_id, fn, period))
            self.wake.clear()
            delay = self.heap[0][0] - time.time() if self.heap else 3600.0
            try:
                await asyncio.wait_for(self.wake.wait(), timeout=max(0.0, delay))
            except TimeoutError:
                pass


async def fire_baseline(n: int, seconds: int) -> dict[str, float]:
    rec = Recorder()

    async def job(due: float) -> None:
        rec.fire(due)

    base = Baseline()
    for i in range(n):
        base.add(i, job, 1.0)
    runner = asyncio.ensure_future(base.run())
    out = await measure(rec, seconds)
    runner.cancel()
    return {**out, **summarise(rec, n, seconds)}


def summarise(rec: Recorder, n: int, seconds: int) -> dict[str, float]:
    lat = sorted(rec.samples)

    def pct(q: float) -> float:
        return (
            1000 * lat[min(len(lat) - 1, max(0, math.ceil(q * len(lat)) - 1))] if lat else math.nan
        )

    return {
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": 1000 * lat[-1] if lat else math.nan,
        "missed": n * seconds - len(lat),
    }


# -- registration of 100,000 cron jobs -------------------------------------------------
def expressions(count: int) -> list[str]:
    return [f"{i % 60} {(i // 60) % 24} * * *" for i in range(count)]


async def register_agentcron(count: int, store: str = "memory://") -> dict[str, float]:
    from agentcron import Scheduler

    async def job() -> None:
        return None

    exprs = expressions(count)
    sched = Scheduler(store, node_id="bench")
    async with sched:
        rss0 = rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        for i, expr in enumerate(exprs):
            sched.add_job(f"job-{i}", trigger=expr, handler=job)
        t1, c1 = time.perf_counter(), time.process_time()
        await sched.flush()
        t2 = time.perf_counter()
        out = {
            "register_s": t1 - t0,
            "register_cpu_s": c1 - c0,
            "stored_s": t2 - t0,
            "rss_mb": rss_mb(),
            "rss0_mb": rss0,
        }
        await sched.stop(grace_s=0)
    return out


async def register_agentcron_sqlite(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        return await register_agentcron(count, f"sqlite:///{tmp}/bench.db")


async def register_agentcron_redis(count: int) -> dict[str, float]:
    """The same on the Redis store, against a throwaway `redis-server` (no persistence) on a
    free loopback port; registration only (`--child register agentcron-redis N`)."""
    sys.path.insert(0, _TESTS_DIR)
    from helpers.redis_server import RedisServer

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis", durable=False).start()
        try:
            return await register_agentcron(count, server.url)
        finally:
            server.stop()


async def register_apscheduler(count: int) -> dict[str, float]:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    async def job() -> None:
        return None

    exprs = expressions(count)
    sched = AsyncIOScheduler(timezone="UTC")
    sched.start()
    rss0 = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    for i, expr in enumerate(exprs):
        sched.add_job(job, CronTrigger.from_crontab(expr, timezone="UTC"), id=f"job-{i}")
    t1, c1 = time.perf_counter(), time.process_time()
    out = {
        "register_s": t1 - t0,
        "register_cpu_s": c1 - c0,
        "stored_s": t1 - t0,
        "rss_mb": rss_mb(),
        "rss0_mb": rss0,
    }
    sched.shutdown(wait=False)
    return out


async def register_baseline(count: int) -> dict[str, float]:
    from croniter import croniter

    async def job(due: float) -> None:
        return None

    exprs = expressions(count)
    rss0 = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    heap: list[tuple[float, int, str]] = []
    now = datetime.now(UTC)
    for i, expr in enumerate(exprs):
        nxt = croniter(expr, now).get_next(float)
        heapq.heappush(heap, (nxt, i, expr))
    t1, c1 = time.perf_counter(), time.process_time()
    return {
        "register_s": t1 - t0,
        "register_cpu_s": c1 - c0,
        "stored_s": t1 - t0,
        "rss_mb": rss_mb(),
        "rss0_mb": rss0,
    }


FIRE = {
    "agentcron": fire_agentcron,
    "agentcron-sqlite": fire_agentcron_sqlite,
    "apscheduler3": fire_apscheduler,
    "baseline": fire_baseline,
}
REGISTER = {
    "agentcron": register_agentcron,
    "agentcron-sqlite": register_agentcron_sqlite,
    "agentcron-redis": register_agentcron_redis,
    "apscheduler3": register_apscheduler,
    "baseline": register_baseline,
}


# -- driver ----------------------------------------------------------------------------
def fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--jobs", type=int, nargs="*", default=list(JOB_COUNTS))
    parser.add_argument("--register", type=int, default=REGISTER_COUNT)
    parser.add_argument("--repeat", type=int, default=1, help="runs per scenario (medians)")
    parser.add_argument(
        "--libs",
        nargs="+",
        choices=LIBS,
        default=list(LIBS),
        help="the libraries to fire (all by default; the CPU ratio needs the baseline)",
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "LIB", "N"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        kind, lib, n = opts.child
        if kind == "fire":
            result = asyncio.run(FIRE[lib](int(n), opts.seconds))
        else:
            result = asyncio.run(REGISTER[lib](int(n)))
        print(json.dumps(result))
        return

    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d}; "
        f"jobs firing every second for {opts.seconds} s\n"
    )
    if opts.repeat > 1:
        _fire_repeated(opts.jobs, opts.seconds, opts.repeat, opts.libs)
    else:
        _fire_once(opts.jobs, opts.seconds, opts.libs)
    print(f"\n{opts.register:,} cron jobs registered in a started scheduler\n")
    print(
        "| library | register s (wall) | register s (CPU) | until stored s | RSS MB added |"
        " RSS MB after | RSS MB before |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for lib in REGISTER:
        r = _register_child(lib, opts.register)
        if "error" in r:
            print(f"| {lib} | error: {r['error']} | | | | | |")
            continue
        print(
            f"| {lib} | {fmt(r['register_s'], 2)} | {fmt(r['register_cpu_s'], 2)} | "
            f"{fmt(r['stored_s'], 2)} | {fmt(r['rss_mb'] - r['rss0_mb'])} | "
            f"{fmt(r['rss_mb'])} | {fmt(r['rss0_mb'])} |",
            flush=True,
        )


def _fire_once(job_counts: list[int], seconds: int, libs: list[str]) -> None:
    print("| jobs | library | p50 ms | p99 ms | max ms | missed | CPU % |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in job_counts:
        for lib in libs:
            r = _fire_child(lib, n, seconds)
            if "error" in r:
                print(f"| {n:,} | {lib} | error: {r['error']} | | | | |")
                continue
            print(
                f"| {n:,} | {lib} | {fmt(r['p50_ms'])} | {fmt(r['p99_ms'])} | "
                f"{fmt(r['max_ms'])} | {fmt(int(r['missed']))} | {fmt(r['cpu_pct'], 2)} |",
                flush=True,
            )


def _fire_repeated(job_counts: list[int], seconds: int, repeat: int, libs: list[str]) -> None:
    """Each scenario `repeat` times, the libraries taking turns; medians (see the module
    docstring)."""
    print(
        f"medians of {repeat} runs per row, the libraries taking turns\n\n"
        "| jobs | library | p50 ms | p99 ms | max ms | missed | CPU % | CPU % range "
        "| CPU x baseline |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|---:|")
    for n in job_counts:
        runs: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libs}
        errors: dict[str, str] = {}
        for _ in range(repeat):
            for lib in libs:
                r = _fire_child(lib, n, seconds)
                if "error" in r:
                    errors[lib] = r["error"]
                else:
                    runs[lib].append(r)
        base = [r["cpu_pct"] for r in runs.get("baseline", [])]
        base_cpu = statistics.median(base) if base else math.nan
        for lib in libs:
            done = runs[lib]
            if not done:
                print(f"| {n:,} | {lib} | error: {errors.get(lib, 'no run')} | | | | | | |")
                continue
            cpu = [r["cpu_pct"] for r in done]
            cpu_med = statistics.median(cpu)
            print(
                f"| {n:,} | {lib} | {fmt(statistics.median(r['p50_ms'] for r in done))} | "
                f"{fmt(statistics.median(r['p99_ms'] for r in done))} | "
                f"{fmt(max(r['max_ms'] for r in done))} | "
                f"{fmt(sum(int(r['missed']) for r in done))} | {fmt(cpu_med, 2)} | "
                f"{fmt(min(cpu), 2)}-{fmt(max(cpu), 2)} | {fmt(cpu_med / base_cpu, 2)}x |",
                flush=True,
            )


def _fire_child(lib: str, n: int, seconds: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "bench.engine_bench",
        "--seconds",
        str(seconds),
        "--child",
        "fire",
        lib,
        str(n),
    ]
    return _run(cmd, seconds + 180)


def _register_child(lib: str, n: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.engine_bench", "--child", "register", lib, str(n)]
    return _run(cmd, 600)


def _run(cmd: list[str], timeout_s: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f}s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


if __name__ == "__main__":
    main()
