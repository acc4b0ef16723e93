"""Queue benchmark: agentcron's SqliteQueue and RedisQueue against peers and raw floors.

Run from the repository root::

    .venv/bin/python -m bench.queue_bench            # 10,000 jobs, best of 3 rounds (~15 min)
    .venv/bin/python -m bench.queue_bench --jobs 2000 --rounds 1 --only agentcron

Every contender gets the same no-op job, in one worker process (this one), on this machine,
one after the other. For each it measures, in jobs per second:

* **single add**: `jobs` adds one at a time, each awaited/acknowledged before the next;
* **bulk add**: the same jobs in batches of 1,000 through the library's bulk call (n/a
  when it has none);
* **end to end**: with the jobs already enqueued, from starting the worker until every
  job has been processed (claim, run the no-op, record the outcome).

Redis contenders share one throwaway `redis-server` (Redis defaults: no AOF, RDB off) on a
free loopback port, flushed between contenders. SQLite contenders write to a fresh file in a
temp dir. Celery is measured when installed (``pip install celery``), as a separate worker
process (``--pool=solo``) timed from its first job to an empty queue.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers.redis_server import RedisServer

BULK_BATCH = 1_000
CONCURRENCY = 64


@dataclass
class Result:
    name: str
    single_add: float | None
    bulk_add: float | None
    e2e: float | None
    note: str = ""


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def noop(*args: Any, **kwargs: Any) -> None:
    """The job every contender runs."""


async def anoop(*args: Any, **kwargs: Any) -> None:
    """The job, for asyncio libraries."""


def fresh(path: Path) -> Path:
    """`path` with no database left from an earlier round."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


# -- agentcron --------------------------------------------------------------------------
async def bench_agentcron(url: str, jobs: int) -> tuple[float, float, float]:
    from agentcron.queue import BulkJob, open_queue

    if url.startswith("sqlite:///"):
        fresh(Path(url.removeprefix("sqlite:///").split("?")[0]))
    q = open_queue(url, "bench")
    start = time.perf_counter()
    for i in range(jobs):
        await q.add("noop", {"i": i})
    single = rate(jobs, time.perf_counter() - start)
    await q.clean(0, 0, "waiting")
    start = time.perf_counter()
    for first in range(0, jobs, BULK_BATCH):
        await q.add_bulk(
            [BulkJob("noop", {"i": i}) for i in range(first, min(first + BULK_BATCH, jobs))]
        )
    bulk = rate(jobs, time.perf_counter() - start)
    worker = q.worker(anoop, concurrency=CONCURRENCY)
    start = time.perf_counter()
    await worker.run(burst=True)
    e2e = rate(jobs, time.perf_counter() - start)
    counts = await q.counts()
    assert counts["completed"] == jobs, counts
    await q.close()
    return single, bulk, e2e


# -- raw floors -------------------------------------------------------------------------
def bench_sqlite_floor(path: Path, jobs: int, synchronous: str) -> tuple[float, float, float]:
    db = sqlite3.connect(fresh(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, state TEXT NOT NULL, data TEXT)")
    db.execute("CREATE INDEX q_state ON q (state, id)")
    start = time.perf_counter()
    for i in range(jobs):
        db.execute("INSERT INTO q (state, data) VALUES ('ready', ?)", (f'{{"i":{i}}}',))
    single = rate(jobs, time.perf_counter() - start)
    db.execute("DELETE FROM q")
    start = time.perf_counter()
    for first in range(0, jobs, BULK_BATCH):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO q (state, data) VALUES ('ready', ?)",
            [(f'{{"i":{i}}}',) for i in range(first, min(first + BULK_BATCH, jobs))],
        )
        db.execute("COMMIT")
    bulk = rate(jobs, time.perf_counter() - start)
    claim = (
        "UPDATE q SET state='active' WHERE id=(SELECT id FROM q WHERE state='ready'"
        " ORDER BY id LIMIT 1) RETURNING id, data"
    )
    start = time.perf_counter()
    while (row := db.execute(claim).fetchone()) is not None:
        noop(row[1])
        db.execute("UPDATE q SET state='done' WHERE id=?", (row[0],))
    e2e = rate(jobs, time.perf_counter() - start)
    db.close()
    return single, bulk, e2e


def bench_sqlite_pop_floor(path: Path, jobs: int, synchronous: str) -> tuple[None, None, float]:
    """The least a SQLite queue can do per job: one DELETE..RETURNING (no ack, no retry)."""
    db = sqlite3.connect(fresh(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, data TEXT)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO q (data) VALUES (?)", [(f'{{"i":{i}}}',) for i in range(jobs)])
    db.execute("COMMIT")
    pop = "DELETE FROM q WHERE id=(SELECT min(id) FROM q) RETURNING data"
    start = time.perf_counter()
    while (row := db.execute(pop).fetchone()) is not None:
        noop(row[0])
    e2e = rate(jobs, time.perf_counter() - start)
    db.close()
    return None, None, e2e


def bench_redis_floor(url: str, jobs: int) -> tuple[float, float, float]:
    import redis

    r = redis.Redis.from_url(url)
    start = time.perf_counter()
    for i in range(jobs):
        r.lpush("floor", f'{{"i":{i}}}')
    single = rate(jobs, time.perf_counter() - start)
    r.delete("floor")
    start = time.perf_counter()
    for first in range(0, jobs, BULK_BATCH):
        r.lpush("floor", *[f'{{"i":{i}}}' for i in range(first, min(first + BULK_BATCH, jobs))])
    bulk = rate(jobs, time.perf_counter() - start)
    start = time.perf_counter()
    while (item := r.blmove("floor", "floor:processing", 0.01, "RIGHT", "LEFT")) is not None:
        noop(item)
        r.lrem("floor:processing", 1, item)
    e2e = rate(jobs, time.perf_counter() - start)
    r.close()
    return single, bulk, e2e


# -- peers ------------------------------------------------------------------------------
def bench_huey(huey: Any, jobs: int) -> tuple[float, None, float]:
    task = huey.task()(noop)
    start = time.perf_counter()
    for i in range(jobs):
        task(i)
    single = rate(jobs, time.perf_counter() - start)
    # What huey's worker thread does per job, without its idle polling.
    start = time.perf_counter()
    done = 0
    while (message := huey.dequeue()) is not None:
        huey.execute(message)
        done += 1
    e2e = rate(done, time.perf_counter() - start)
    assert done == jobs, done
    return single, None, e2e


def bench_rq(url: str, jobs: int) -> tuple[float, float, float]:
    import redis
    from rq import Queue, SimpleWorker

    from bench.queue_bench import noop  # rq refuses functions of __main__

    conn = redis.Redis.from_url(url)
    q = Queue("bench", connection=conn)
    start = time.perf_counter()
    for i in range(jobs):
        q.enqueue(noop, i)
    single = rate(jobs, time.perf_counter() - start)
    q.empty()
    start = time.perf_counter()
    for first in range(0, jobs, BULK_BATCH):
        q.enqueue_many(
            [Queue.prepare_data(noop, (i,)) for i in range(first, min(first + BULK_BATCH, jobs))]
        )
    bulk = rate(jobs, time.perf_counter() - start)
    worker = SimpleWorker([q], connection=conn)
    start = time.perf_counter()
    worker.work(burst=True, logging_level="ERROR")
    e2e = rate(jobs, time.perf_counter() - start)
    return single, bulk, e2e


async def bench_arq(url: str, jobs: int) -> tuple[float, None, float]:
    from arq.connections import RedisSettings, create_pool
    from arq.worker import Worker, func

    settings = RedisSettings.from_dsn(url)
    pool = await create_pool(settings)
    start = time.perf_counter()
    for i in range(jobs):
        await pool.enqueue_job("anoop", i)
    single = rate(jobs, time.perf_counter() - start)
    # Tuned: no poll delay, read many at once, keep no results, quiet.
    worker = Worker(
        [func(anoop, name="anoop")],
        redis_pool=pool,
        burst=True,
        max_jobs=CONCURRENCY,
        poll_delay=0,
        queue_read_limit=1000,
        keep_result=0,
        handle_signals=False,
        log_results=False,
    )
    start = time.perf_counter()
    await worker.main()
    e2e = rate(jobs, time.perf_counter() - start)
    await worker.close()
    await pool.aclose()
    return single, None, e2e


async def bench_saq(url: str, jobs: int) -> tuple[float, None, float]:
    from saq import Queue, Worker

    q = Queue.from_url(url, name="bench")
    await q.connect()
    start = time.perf_counter()
    for i in range(jobs):
        await q.enqueue("anoop", i=i)
    single = rate(jobs, time.perf_counter() - start)
    worker = Worker(
        q, functions=[("anoop", anoop)], concurrency=CONCURRENCY, burst=True, dequeue_timeout=0.05
    )
    start = time.perf_counter()
    await worker.start()
    e2e = rate(jobs, time.perf_counter() - start)
    await q.disconnect()
    return single, None, e2e


async def bench_bullmq(url: str, jobs: int) -> tuple[float, float, float]:
    from bullmq import Queue, Worker

    q = Queue("raw", {"connection": url})
    start = time.perf_counter()
    for i in range(jobs):
        await q.add("noop", {"i": i})
    single = rate(jobs, time.perf_counter() - start)
    await q.client.flushall()  # (Queue.obliterate(force=True) fails in bullmq 2.15: bool arg)
    start = time.perf_counter()
    for first in range(0, jobs, BULK_BATCH):
        await q.addBulk(
            [
                {"name": "noop", "data": {"i": i}}
                for i in range(first, min(first + BULK_BATCH, jobs))
            ]
        )
    bulk = rate(jobs, time.perf_counter() - start)
    done = asyncio.Event()
    count = 0

    async def process(job: Any, token: str) -> None:
        nonlocal count
        count += 1
        if count == jobs:
            done.set()

    start = time.perf_counter()
    worker = Worker("raw", process, {"connection": url, "concurrency": CONCURRENCY})
    await done.wait()
    e2e = rate(jobs, time.perf_counter() - start)
    await worker.close()
    await q.close()
    return single, bulk, e2e


def bench_celery(url: str, jobs: int, workdir: Path) -> tuple[float, None, float] | None:
    try:
        import celery  # noqa: F401
    except ImportError:
        return None
    import redis

    app_file = workdir / "celery_bench_app.py"
    app_file.write_text(
        "from celery import Celery\n"
        f"app = Celery('bench', broker={url!r})\n"
        "app.conf.task_ignore_result = True\n"
        "app.conf.worker_hijack_root_logger = False\n"
        "@app.task(name='noop')\n"
        "def noop(*args, **kwargs):\n    return None\n"
    )
    sys.path.insert(0, str(workdir))
    from celery_bench_app import noop as celery_noop  # type: ignore[import-not-found]

    start = time.perf_counter()
    for i in range(jobs):
        celery_noop.delay(i)
    single = rate(jobs, time.perf_counter() - start)
    r = redis.Redis.from_url(url)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_bench_app",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=ERROR",
            "-Q",
            "celery",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Timed from the first job taken to an empty queue (worker start-up excluded).
        while (left := r.llen("celery")) == jobs:
            time.sleep(0.001)
        start, first_left = time.perf_counter(), left
        deadline = start + 600
        while r.llen("celery") > 0 and time.perf_counter() < deadline:
            time.sleep(0.001)
        e2e = rate(first_left, time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(30)
    return single, None, e2e


# -- driver -----------------------------------------------------------------------------
def best(rounds: list[tuple[float | None, ...]]) -> tuple[float | None, ...]:
    """Per column, the best of the rounds (None stays None)."""
    return tuple(
        None if any(v is None for v in column) else max(v for v in column if v is not None)
        for column in zip(*rounds, strict=True)
    )


def run_all(jobs: int, only: str | None, rounds: int = 3) -> list[Result]:
    results: list[Result] = []
    tmp = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    server = RedisServer(tmp / "redis", durable=False).start()
    import redis

    flush = redis.Redis.from_url(server.url)

    def want(name: str) -> bool:
        return only is None or only.lower() in name.lower()

    def record(name: str, run: Callable[[], Any], note: str = "") -> None:
        if not want(name):
            return
        outs = []
        for round_no in range(rounds):
            flush.flushall()
            print(f"... {name} (round {round_no + 1}/{rounds})", file=sys.stderr, flush=True)
            out = run()
            if out is None:
                results.append(Result(name, None, None, None, "not installed"))
                return
            outs.append(out)
        results.append(Result(name, *best(outs), note))

    def aio(coro: Callable[[], Awaitable[Any]]) -> Callable[[], Any]:
        return lambda: asyncio.run(coro())  # type: ignore[arg-type]

    try:
        record(
            "agentcron SqliteQueue (NORMAL)",
            aio(lambda: bench_agentcron(f"sqlite:///{tmp}/agentcron-normal.db", jobs)),
            f"concurrency {CONCURRENCY}",
        )
        record(
            "agentcron SqliteQueue (FULL)",
            aio(
                lambda: bench_agentcron(f"sqlite:///{tmp}/agentcron-full.db?synchronous=FULL", jobs)
            ),
            f"concurrency {CONCURRENCY}",
        )
        record(
            "agentcron RedisQueue",
            aio(lambda: bench_agentcron(server.url, jobs)),
            f"concurrency {CONCURRENCY}, BullMQ keys and scripts",
        )
        record(
            "floor: raw SQLite (NORMAL)",
            lambda: bench_sqlite_floor(tmp / "floor-normal.db", jobs, "NORMAL"),
            "UPDATE..RETURNING claim + UPDATE done per job (two commits)",
        )
        record(
            "floor: raw SQLite (FULL)",
            lambda: bench_sqlite_floor(tmp / "floor-full.db", jobs, "FULL"),
            "same, synchronous=FULL",
        )
        record(
            "floor: raw SQLite pop (NORMAL)",
            lambda: bench_sqlite_pop_floor(tmp / "pop-normal.db", jobs, "NORMAL"),
            "one DELETE..RETURNING per job: no ack, no retry, no lease",
        )
        record(
            "floor: raw SQLite pop (FULL)",
            lambda: bench_sqlite_pop_floor(tmp / "pop-full.db", jobs, "FULL"),
            "same, synchronous=FULL",
        )
        record(
            "floor: raw Redis BLMOVE+LREM",
            lambda: bench_redis_floor(server.url, jobs),
            "one job at a time",
        )
        from huey import RedisHuey, SqliteHuey

        record(
            "huey SQLite (FULL, its default)",
            lambda: bench_huey(SqliteHuey("bench", filename=str(tmp / "huey.db")), jobs),
            "dequeue+execute loop",
        )
        record(
            "huey Redis",
            lambda: bench_huey(RedisHuey("bench", url=server.url), jobs),
            "dequeue+execute loop",
        )
        record(
            "arq (tuned)",
            aio(lambda: bench_arq(server.url, jobs)),
            f"max_jobs {CONCURRENCY}, poll_delay 0, keep_result 0",
        )
        record("saq", aio(lambda: bench_saq(server.url, jobs)), f"concurrency {CONCURRENCY}")
        record(
            "bullmq (Python package)",
            aio(lambda: bench_bullmq(server.url, jobs)),
            f"its Worker, concurrency {CONCURRENCY}",
        )
        record("rq (SimpleWorker)", lambda: bench_rq(server.url, jobs), "")
        record(
            "celery (solo pool)",
            lambda: bench_celery(server.url, jobs, tmp),
            "separate process, timed from first job",
        )
    finally:
        flush.close()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def table(results: list[Result], jobs: int, rounds: int) -> str:
    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.0f}"

    lines = [
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores, "
        f"{jobs:,} no-op jobs, 1 worker process, best of {rounds} rounds; jobs/s (higher is better).",
        "",
        "| contender | single add | bulk add | end to end | notes |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.name} | {cell(r.single_add)} | {cell(r.bulk_add)} | {cell(r.e2e)} | {r.note} |"
        for r in results
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--only", help="run only contenders whose name contains this text")
    parser.add_argument(
        "--rounds", type=int, default=3, help="best of this many runs per contender"
    )
    args = parser.parse_args()
    print(table(run_all(args.jobs, args.only, args.rounds), args.jobs, args.rounds))


if __name__ == "__main__":
    main()
