"""Cluster claim throughput: occurrences claimed and recorded per second, 1/2/4 processes.

Run from the repository root:

    .venv/bin/python -m bench.cluster_bench            # about a minute
    .venv/bin/python -m bench.cluster_bench --quick    # a few seconds, noisier

Workload (the same for every row): `--jobs` jobs x `--fires` fire times = N occurrences.
Each process is a scheduler: for an occurrence it calls `claim_fire(job, at, node)`, and
when it wins, `record_run` of the finished run (`succeeded`). `--concurrency` fires are
claimed at once per process (a scheduler's fire tasks run concurrently). Rate = N / (wall
time from a common start barrier to the last process's end). Two tables:

* **split** (the capacity of the store): the N occurrences are split between the processes,
  each claims and records its share. This is the number the goals are about.
* **raced** (what a cluster of identical schedulers does): every process tries to claim
  every occurrence, walking the list from its own offset; each occurrence is won once, the
  other processes' attempts are lost claims (one round trip each).

A fresh store per row:

* **Redis**: one throwaway `redis-server` on loopback, AOF with `appendfsync everysec` (the
  setting recommended in docs/multi-node.md); `RedisStore` over TCP.
* **SQLite**: one `SqliteStore` file (WAL, `synchronous=NORMAL`) shared by the processes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agentcron.models import RunRecord, RunStatus, new_run_id
from agentcron.store.base import Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A throwaway redis-server (AOF, fsync every second) in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.port = _free_port()
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _open(url: str) -> Store:
    if url.startswith("redis"):
        from agentcron.store.redis import RedisStore

        return RedisStore(url)
    from agentcron.store.sqlite import SqliteStore

    return SqliteStore(url.removeprefix("sqlite:///"), busy_timeout_s=30.0)


async def _node(
    url: str,
    index: int,
    procs: int,
    jobs: int,
    fires: int,
    concurrency: int,
    raced: bool,
    barrier: Any,
) -> tuple[int, int]:
    store = _open(url)
    await store.open()
    total = jobs * fires
    occurrences = [(f"job-{i % jobs}", T0 + timedelta(seconds=i // jobs)) for i in range(total)]
    start, stop = index * total // procs, (index + 1) * total // procs
    order = occurrences[start:] + occurrences[:start] if raced else occurrences[start:stop]
    node = f"node-{index}"
    won = lost = 0

    async def one(job_id: str, at: datetime) -> None:
        nonlocal won, lost
        if await store.claim_fire(job_id, at, node, now=at):
            run = RunRecord(
                run_id=new_run_id(),
                job_id=job_id,
                scheduled_for=at,
                status=RunStatus.succeeded,
                started_at=at,
                finished_at=at + timedelta(milliseconds=5),
                node_id=node,
            )
            await store.record_run(run)
            won += 1
        else:
            lost += 1

    await asyncio.to_thread(barrier.wait)
    for i in range(0, len(order), concurrency):
        await asyncio.gather(*(one(j, at) for j, at in order[i : i + concurrency]))
    await store.close()
    return won, lost


def _child(*args: Any) -> None:
    queue = args[-1]
    queue.put(asyncio.run(_node(*args[:-1])))


def measure(
    url: str, procs: int, jobs: int, fires: int, concurrency: int, raced: bool
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs + 1)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_child,
            args=(url, i, procs, jobs, fires, concurrency, raced, barrier, results),
        )
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get() for _ in workers]
    elapsed = time.perf_counter() - started
    for w in workers:
        w.join()
    won = sum(o[0] for o in outcomes)
    lost = sum(o[1] for o in outcomes)
    if won != jobs * fires:
        raise AssertionError(f"{won} occurrences claimed, expected {jobs * fires}")
    return {"rate": won / elapsed, "lost": lost, "elapsed": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--fires", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    fires = 30 if args.quick else args.fires
    print(
        f"# {args.jobs} jobs x {fires} fires = {args.jobs * fires} occurrences, "
        f"concurrency {args.concurrency}/process; Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    for raced in (False, True):
        rows = run_rows(args.jobs, fires, args.concurrency, raced)
        print_table("raced" if raced else "split", rows)


def run_rows(
    jobs: int, fires: int, concurrency: int, raced: bool
) -> list[tuple[str, int, dict[str, float]]]:
    rows: list[tuple[str, int, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="agentcron-cluster-bench-") as tmp:
        for procs in (1, 2, 4):
            directory = Path(tmp) / f"redis-{procs}"
            directory.mkdir()
            server = RedisProcess(directory)
            try:
                rows.append(
                    ("Redis", procs, measure(server.url, procs, jobs, fires, concurrency, raced))
                )
            finally:
                server.stop()
        for procs in (1, 2):
            path = Path(tmp) / f"sqlite-{procs}" / "scheduler.db"
            path.parent.mkdir()
            rows.append(
                (
                    "SQLite",
                    procs,
                    measure(f"sqlite:///{path}", procs, jobs, fires, concurrency, raced),
                )
            )
    return rows


def print_table(title: str, rows: list[tuple[str, int, dict[str, float]]]) -> None:
    base = {
        kind: next(r[2]["rate"] for r in rows if r[0] == kind and r[1] == 1)
        for kind in ("Redis", "SQLite")
    }
    print(f"\n{title}:\n")
    print(
        "| store | processes | occurrences/s | vs 1 process | per process vs 1 SQLite process "
        "| lost claims |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for kind, procs, m in rows:
        per_process = m["rate"] / procs / base["SQLite"]
        print(
            f"| {kind} | {procs} | {m['rate']:,.0f} | {m['rate'] / base[kind]:.2f}x "
            f"| {per_process:.2f}x | {m['lost']:.0f} |"
        )


if __name__ == "__main__":
    main()
