"""SQLite store speed: recorded runs per second, history pages at 1M rows, start-up at 100k jobs.

Run from the repository root:

    .venv/bin/python -m bench.store_bench            # full run (about a minute)
    .venv/bin/python -m bench.store_bench --quick    # smaller sizes, for a smoke test

Measured, each on a fresh database file in a temporary directory:

1. **Raw floor**: single-row `INSERT`s on a plain `sqlite3` connection in WAL, one transaction
   (one commit) each, under `synchronous=NORMAL` and `FULL`. This is what one durable write
   costs when nothing batches.
2. **Recorded runs/s**: `SqliteStore.record_run` twice per run (start: `running` with a lease;
   finish: `succeeded`), each `await` returning only after its commit (durable before
   acknowledged). `--concurrency` coroutines record runs at once, as the jobs of a busy
   scheduler do; the writer thread group-commits what is queued. Also with concurrency 1
   (no batching possible). Ratio = recorded runs/s ÷ raw single-row inserts/s. Rates are the
   best of `--rounds` (3) runs on fresh files, floor included: the machine may be shared.
   Also the CPU time of this process per recorded run (both threads, SQLite included), which
   other load on the machine disturbs much less than the rates.
3. **History page**: `list_runs(RunQuery(job_id=..., limit=50))` with 1,000,000 runs in the
   table (the job queried owns 100,000 of them): median and p95 over many calls, first page
   and a page at offset 5,000; the first page of failed runs across all jobs; plus
   `count_runs` (of that job, and of failed runs across all jobs) and `run_stats`.
4. **Start-up**: `SqliteStore(path).open()` + `list_jobs()` with 100,000 stored jobs
   (definitions of ~320 bytes of JSON), in a fresh store object; median of `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentcron.models import RunQuery, RunRecord, RunStatus
from agentcron.store.sqlite import SqliteStore, to_us

T0 = datetime(2026, 1, 1, tzinfo=UTC)


# -- 1. the raw floor ------------------------------------------------------------------------
def raw_inserts_per_s(path: Path, synchronous: str, rows: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = " + ("FULL" if synchronous == "FULL" else "NORMAL"))
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, job TEXT, at INTEGER, status TEXT)")
    started = time.perf_counter()
    for i in range(rows):
        conn.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (f"r{i}", "job", i, "succeeded"))
    elapsed = time.perf_counter() - started
    conn.close()
    return rows / elapsed


# -- 2. recorded runs ------------------------------------------------------------------------
async def recorded_runs_per_s(
    path: Path, synchronous: str, runs: int, concurrency: int
) -> tuple[float, float]:
    """(recorded runs per second, CPU µs per recorded run: both threads, this process)."""
    store = SqliteStore(path, synchronous=synchronous)  # type: ignore[arg-type]
    await store.open()
    per_worker = max(1, runs // concurrency)

    async def worker(w: int) -> None:
        for i in range(per_worker):
            due = T0 + timedelta(seconds=i)
            run = RunRecord(
                run_id=f"{w:04d}-{i:08d}",  # the store is measured, not the id generator
                job_id=f"job-{w}",
                scheduled_for=due,
                status=RunStatus.running,
                started_at=due,
                node_id="bench",
                lease_expires_at=due + timedelta(seconds=30),
            )
            await store.record_run(run)
            await store.record_run(
                run.evolve(
                    status=RunStatus.succeeded,
                    finished_at=due + timedelta(milliseconds=3),
                    lease_expires_at=None,
                )
            )

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    await store.close()
    runs_done = per_worker * concurrency
    return runs_done / elapsed, cpu_s / runs_done * 1e6


# -- 3. history pages ------------------------------------------------------------------------
def populate_runs(path: Path, total: int, hot_job_rows: int) -> None:
    """Bulk-load `total` runs (the hot job owns `hot_job_rows`) straight into the schema."""
    asyncio.run(_create(path))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # loading only; measured reads are unaffected
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB: index inserts stay in memory
    conn.execute("BEGIN")
    statuses = ("succeeded",) * 8 + ("failed", "skipped")

    def rows() -> Any:
        for i in range(total):
            job = "hot" if i < hot_job_rows else f"job-{i % 900}"
            at = to_us(T0) + i * 1_000_000
            status = statuses[i % len(statuses)]
            finished = at + 1000 + (i * 7919) % 5_000_000 if status != "skipped" else None
            yield (f"{i:012d}", job, at, status, 1, at, finished, "bench")

    conn.executemany(
        "INSERT INTO runs (run_id, job_id, scheduled_for_us, status, attempt, started_us, "
        "finished_us, node_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


async def _create(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    await store.close()


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    """Median and p95 latency in milliseconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


async def history_latencies(path: Path, repeat: int) -> dict[str, tuple[float, float]]:
    store = SqliteStore(path)
    await store.open()
    first = RunQuery(job_id="hot", limit=50)
    deep = RunQuery(job_id="hot", limit=50, offset=5_000)
    failed = RunQuery(job_id="hot", statuses=(RunStatus.failed,), limit=50)
    out = {
        "list_runs(job) first page": await timed(lambda: store.list_runs(first), repeat),
        "list_runs(job) page at offset 5000": await timed(lambda: store.list_runs(deep), repeat),
        "list_runs(job, failed) first page": await timed(lambda: store.list_runs(failed), repeat),
        "list_runs() all jobs first page": await timed(
            lambda: store.list_runs(RunQuery(limit=50)), repeat
        ),
        "list_runs(failed) all jobs first page": await timed(
            lambda: store.list_runs(RunQuery(statuses=(RunStatus.failed,), limit=50)), repeat
        ),
        "count_runs(job)": await timed(lambda: store.count_runs(RunQuery(job_id="hot")), 20),
        "count_runs(failed) all jobs": await timed(
            lambda: store.count_runs(RunQuery(statuses=(RunStatus.failed,))), 5
        ),
        "run_stats(job)": await timed(lambda: store.run_stats("hot"), 5),
    }
    await store.close()
    return out


# -- 4. start-up -----------------------------------------------------------------------------
def populate_jobs(path: Path, count: int) -> None:
    asyncio.run(_create(path))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    now_us = to_us(T0)
    conn.executemany(
        "INSERT INTO jobs (id, definition, paused, created_us, updated_us, version, next_run_us) "
        "VALUES (?, ?, 0, ?, ?, 1, ?)",
        (
            (f"job-{i:06d}", json.dumps(_definition(i)), now_us, now_us, now_us + i)
            for i in range(count)
        ),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _definition(i: int) -> dict[str, Any]:
    return {
        "name": f"Job number {i}",
        "trigger": {"cron": f"{i % 60} */2 * * *"},
        "handler": {"callable": "myagent.tasks:work"},
        "timezone": "Europe/Berlin",
        "timeout": 300,
        "overlap": {"policy": "skip"},
        "retry": {"max_attempts": 3, "strategy": "exponential", "base_delay": 1.0},
        "misfire": {"policy": "run_once"},
        "tags": ["bench", f"group-{i % 10}"],
    }


async def startup_s(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    store = SqliteStore(path)
    await store.open()
    jobs = await store.list_jobs()
    elapsed = time.perf_counter() - started
    await store.close()
    return elapsed, len(jobs)


# -- report ----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--rounds", type=int, default=3, help="write rates: best of N; start-up: median of N"
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="agentcron-bench-", dir=Path.cwd()) as tmp:
        base = Path(tmp)
        results["write"] = _write_section(base, scale, args.concurrency, args.rounds)
        results["history"] = _history_section(base, scale)
        results["startup"] = _startup_section(base, scale, args.rounds)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print_tables(results)


def _write_section(base: Path, scale: int, concurrency: int, rounds: int) -> list[dict[str, Any]]:
    """Best of `rounds` for each figure (fresh files each round): this machine is shared."""
    rows = []
    for sync, raw_rows, runs in (("NORMAL", 30_000, 60_000), ("FULL", 3_000, 60_000)):
        floor = batched = single = 0.0
        cpu_us = float("inf")
        for r in range(rounds):
            floor = max(
                floor, raw_inserts_per_s(base / f"raw-{sync}-{r}.db", sync, raw_rows // scale)
            )
            rate, cpu = asyncio.run(
                recorded_runs_per_s(base / f"runs-{sync}-{r}.db", sync, runs // scale, concurrency)
            )
            batched, cpu_us = max(batched, rate), min(cpu_us, cpu)
            one, _ = asyncio.run(
                recorded_runs_per_s(base / f"one-{sync}-{r}.db", sync, 2_000 // scale, 1)
            )
            single = max(single, one)
        rows.append(
            {
                "synchronous": sync,
                "raw_single_row_inserts_per_s": floor,
                "recorded_runs_per_s": batched,
                "concurrency": concurrency,
                "ratio_to_raw": batched / floor,
                "recorded_runs_per_s_concurrency_1": single,
                "cpu_us_per_recorded_run": cpu_us,
            }
        )
    return rows


def _history_section(base: Path, scale: int) -> dict[str, Any]:
    path = base / "history.db"
    total = 1_000_000 // scale
    started = time.perf_counter()
    populate_runs(path, total, hot_job_rows=total // 10)
    load_s = time.perf_counter() - started
    latencies = asyncio.run(history_latencies(path, repeat=200))
    return {
        "rows": total,
        "hot_job_rows": total // 10,
        "load_s": load_s,
        "latency_ms": {k: {"median": v[0], "p95": v[1]} for k, v in latencies.items()},
    }


def _startup_section(base: Path, scale: int, rounds: int) -> dict[str, Any]:
    path = base / "jobs.db"
    count = 100_000 // scale
    populate_jobs(path, count)
    samples = []
    for _ in range(rounds):
        elapsed, loaded = asyncio.run(startup_s(path))
        assert loaded == count
        samples.append(elapsed)
    return {"jobs": count, "open_and_list_jobs_s": statistics.median(samples), "rounds": rounds}


def _print_tables(results: dict[str, Any]) -> None:
    print(
        f"Python {results['python']}, SQLite {results['sqlite']}, {results['platform']}, "
        f"{results['cpus']} CPUs\n"
    )
    print(
        "| synchronous | raw single-row inserts/s | recorded runs/s (concurrency) | ratio | "
        "CPU µs per recorded run | recorded runs/s (concurrency 1) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for row in results["write"]:
        print(
            f"| {row['synchronous']} | {row['raw_single_row_inserts_per_s']:,.0f} | "
            f"{row['recorded_runs_per_s']:,.0f} ({row['concurrency']}) | "
            f"{row['ratio_to_raw']:.2f} | {row['cpu_us_per_recorded_run']:.0f} | "
            f"{row['recorded_runs_per_s_concurrency_1']:,.0f} |"
        )
    history = results["history"]
    print(
        f"\nHistory with {history['rows']:,} runs ({history['hot_job_rows']:,} in the job "
        f"queried; bulk load {history['load_s']:.1f} s)\n"
    )
    print("| query | median ms | p95 ms |")
    print("|---|---:|---:|")
    for name, value in history["latency_ms"].items():
        print(f"| {name} | {value['median']:.2f} | {value['p95']:.2f} |")
    startup = results["startup"]
    print(
        f"\nStart-up: open + list_jobs with {startup['jobs']:,} jobs: "
        f"{startup['open_and_list_jobs_s']:.2f} s (median of {startup['rounds']})"
    )


if __name__ == "__main__":
    main()
