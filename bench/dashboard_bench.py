"""Dashboard benchmark: HTTP latency at scale, WebSocket fan-out, engine lateness.

    .venv/bin/python -m bench.dashboard_bench            # ~3-5 minutes
    .venv/bin/python -m bench.dashboard_bench --quick    # ~1 minute, smaller numbers

1. **HTTP latency**: the real `Scheduler` with 10,000 jobs on a SQLite store holding
   1,000,000 runs (bulk-loaded into the store's schema), served by uvicorn in its own
   thread and event loop; a client in another thread requests pages of 100 rows
   (`GET /api/jobs`, `GET /api/runs` with filters) one after another over keep-alive.
   Goal: p99 under 50 ms.
2. **WebSocket fan-out**: 100 authenticated clients in 2 client processes while the engine
   loop publishes 1,000 events/s. Goal: no event lost for clients that keep up.
3. **Engine lateness**: 20 jobs fire every second; lateness (start - scheduled time) of
   their runs with nobody watching vs while the 100 clients watch. Goal: within 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings
from agentcron.dashboard.server import DashboardServer
from agentcron.events import QueueJobProgress
from agentcron.models import RunQuery, RunStatus
from agentcron.store.sqlite import SqliteStore, to_us

TOKEN = "bench-token-0123456789abcdef"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
CLIENT_PROCESSES = 2


async def noop(ctx: Any) -> None:
    """The handler of every benchmark job (importable, so jobs are stored by reference)."""
    return None


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- data -------------------------------------------------------------------------------------
def bulk_runs(path: Path, jobs: int, runs: int, now: datetime) -> float:
    """Load `runs` final runs spread over `jobs` jobs and the last 30 days; seconds taken."""
    started = time.perf_counter()

    async def create() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(create())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # loading only
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("BEGIN")
    statuses = ("succeeded",) * 8 + ("failed", "skipped")
    span_us = 30 * 86400 * 1_000_000
    end_us = to_us(now - timedelta(minutes=5))

    def rows() -> Any:
        for i in range(runs):
            at = end_us - span_us + (i * span_us) // runs
            status = statuses[i % len(statuses)]
            finished = at + 1000 + (i * 7919) % 5_000_000 if status != "skipped" else None
            error = "exit status 1" if status == "failed" else None
            skip = "overlap" if status == "skipped" else None
            yield (f"r{i:012d}", f"job-{i % jobs:05d}", at, status, 1, at, finished, "bench",
                   error, skip)  # fmt: skip

    conn.executemany(
        "INSERT INTO runs (run_id, job_id, scheduled_for_us, status, attempt, started_us, "
        "finished_us, node_id, error, skip_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


# -- the engine side (its own thread and loop) --------------------------------------------------
class EngineThread:
    """Scheduler + dashboard in a thread; `call(coro_fn)` runs work in its loop."""

    def __init__(self, store_url: str, jobs: int, every_second: int) -> None:
        self.store_url = store_url
        self.jobs = jobs
        self.every_second = every_second
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.url = ""
        self.sched: Scheduler | None = None
        self.server: DashboardServer | None = None
        self._stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        sched = Scheduler(store=self.store_url, node_id="bench-node")
        for i in range(self.jobs):
            # Yearly schedules: listed, described and planned, but they do not fire now.
            sched.add_job(f"job-{i:05d}", trigger=f"{i % 60} {i % 24} 1 1 *",
                          handler="bench.dashboard_bench:noop", name=f"Job number {i}",
                          tags=["bench", f"group-{i % 10}"])  # fmt: skip
        for i in range(self.every_second):
            sched.add_job(f"tick-{i:02d}", trigger="* * * * * *", handler=noop,
                          name=f"Every second {i}", tags=["tick"], enabled=False)  # fmt: skip
        self.sched = sched
        settings = DashboardSettings(auth_token=TOKEN, port=0, ws_max_pending=10_000)
        async with sched:
            self.server = DashboardServer(sched, settings)
            async with self.server:
                self.url = self.server.url.rstrip("/")
                self.ready.set()
                await self._stop.wait()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait()
        if self.error is not None:
            raise self.error

    def call(self, fn: Callable[[], Any]) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result()

    def stop(self) -> None:
        assert self.loop is not None and self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(120)


# -- 1. HTTP latency ------------------------------------------------------------------------------
def http_latency(
    engine: EngineThread, requests: int, jobs: int, now: datetime
) -> list[dict[str, Any]]:
    day = (now - timedelta(days=3)).isoformat()
    day_end = (now - timedelta(days=2)).isoformat()
    scenarios: list[tuple[str, Callable[[int], str]]] = [
        ("GET /api/jobs?limit=100 (first page)", lambda i: "/api/jobs?limit=100"),
        ("GET /api/jobs?limit=100&offset=k*100", lambda i: f"/api/jobs?limit=100&offset={(i * 3700) % jobs}"),
        ("GET /api/jobs?search=...&tag=...", lambda i: f"/api/jobs?limit=100&search=number%20{i % 97}&tag=group-{i % 10}"),
        ("GET /api/runs?limit=100 (newest)", lambda i: "/api/runs?limit=100"),
        ("GET /api/runs?limit=100&offset=k*100", lambda i: f"/api/runs?limit=100&offset={(i * 100) % 10_000}"),
        ("GET /api/runs?job=...", lambda i: f"/api/runs?limit=100&job=job-{(i * 37) % jobs:05d}"),
        ("GET /api/runs?status=failed", lambda i: "/api/runs?limit=100&status=failed"),
        ("GET /api/runs?since=...&until=... (1 day)", lambda i: f"/api/runs?limit=100&since={day}&until={day_end}"),
        ("GET /api/jobs/{id} (detail: 10 fires, stats, 50 runs)", lambda i: f"/api/jobs/job-{(i * 37) % jobs:05d}"),
    ]  # fmt: skip
    out = []
    with httpx.Client(base_url=engine.url, headers=HEADERS, timeout=60) as client:
        for _ in range(20):  # warm-up: connections, caches, SQLite pages
            client.get("/api/jobs?limit=100").raise_for_status()
            client.get("/api/runs?limit=100").raise_for_status()
        for label, path in scenarios:
            samples = []
            rows = 0
            for i in range(requests):
                started = time.perf_counter()
                response = client.get(path(i).replace("+00:00", "Z"))
                samples.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                rows = len(response.json().get("items", [1]))
            out.append({
                "scenario": label, "rows": rows, "p50_ms": pct(samples, 0.5),
                "p95_ms": pct(samples, 0.95), "p99_ms": pct(samples, 0.99),
            })  # fmt: skip
            print(f"  {label}: p50 {out[-1]['p50_ms']:.1f} ms, p99 {out[-1]['p99_ms']:.1f} ms",
                  flush=True)  # fmt: skip
    return out


# -- 2. WebSocket fan-out (client processes) --------------------------------------------------------
def client_process(ws_url: str, clients: int, expect: int, conn: Any) -> None:
    asyncio.run(_clients(ws_url, clients, expect, conn))


async def _clients(ws_url: str, clients: int, expect: int, conn: Any) -> None:
    from websockets.asyncio.client import connect

    results: list[dict[str, Any]] = []
    ready = asyncio.Event()
    connected = 0

    marker = '"type":"queue.job_progress"'

    async def one() -> None:
        # Cheap on purpose: the clients share the machine's CPUs with the engine, so they
        # count events by substring and parse only one timestamp per frame.
        nonlocal connected
        got = 0
        lat: list[float] = []
        closed = None
        async with connect(ws_url, max_size=None, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "auth", "token": TOKEN}))
            assert json.loads(await ws.recv())["type"] == "hello"
            connected += 1
            if connected == clients:
                ready.set()
            try:
                while got < expect:
                    async with asyncio.timeout(30):
                        frame = await ws.recv()
                    assert isinstance(frame, str)
                    n = frame.count(marker)
                    if n:
                        got += n
                        at = frame.find('"at":"')  # the oldest event of the frame
                        stamp = frame[at + 6 : frame.index('"', at + 6)]
                        lat.append((time.time() - datetime.fromisoformat(stamp).timestamp()) * 1000)
            except Exception as exc:
                closed = f"{type(exc).__name__}: {ws.close_code}"
        results.append({"got": got, "distinct": got, "lat": lat, "closed": closed})

    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await ready.wait()
    conn.send("ready")
    await asyncio.gather(*tasks)
    conn.send(results)
    conn.close()


async def publish(sched: Scheduler, rate: int, seconds: float) -> int:
    """Publish `rate` events/s for `seconds` from the engine loop; returns how many."""
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    started = loop.time()
    sent = 0
    while sent < total:
        due = min(total, int((loop.time() - started) * rate) + 1)
        now = sched.clock.now()
        while sent < due:
            sched.events.publish(
                QueueJobProgress(at=now, queue="bench", job_id=str(sent), progress=0.5)
            )
            sent += 1
        await asyncio.sleep(0.005)
    return sent


async def lateness_window(sched: Scheduler, seconds: float) -> list[float]:
    """Enable the every-second jobs for `seconds`; lateness (ms) of the runs they made."""
    start = sched.clock.now()
    ticks = [j.id for j in sched.jobs() if j.id.startswith("tick-")]
    for job_id in ticks:
        sched.update(job_id, enabled=True)
    await asyncio.sleep(seconds)
    for job_id in ticks:
        sched.update(job_id, enabled=False)
    await asyncio.sleep(1.5)  # let the last runs finish and be recorded
    out: list[float] = []
    for job_id in ticks:
        runs = await sched.store.list_runs(RunQuery(job_id=job_id, since=start, limit=10_000))
        out.extend(
            (r.started_at - r.scheduled_for).total_seconds() * 1000
            for r in runs
            if r.started_at is not None and r.status is RunStatus.succeeded
        )
    return out


def fanout_and_lateness(
    engine: EngineThread, clients: int, rate: int, seconds: float
) -> dict[str, Any]:
    sched = engine.sched
    assert sched is not None
    print("  lateness with nobody watching ...", flush=True)
    baseline = engine.call(lambda: lateness_window(sched, seconds))

    async def unwatched() -> list[float]:
        pub = asyncio.create_task(publish(sched, rate, seconds))
        late = await lateness_window(sched, seconds)
        await pub
        return late

    print(f"  lateness while {rate} events/s are published, no client ...", flush=True)
    publishing = engine.call(unwatched)
    expect = int(rate * seconds)
    ws_url = engine.url.replace("http://", "ws://") + "/ws"
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    per = clients // CLIENT_PROCESSES
    for _ in range(CLIENT_PROCESSES):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=client_process, args=(ws_url, per, expect, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for parent in pipes:
        assert parent.recv() == "ready"
    print(
        f"  {per * CLIENT_PROCESSES} clients connected; publishing {rate} events/s ...", flush=True
    )

    async def watched() -> tuple[int, list[float]]:
        pub = asyncio.create_task(publish(sched, rate, seconds))
        late = await lateness_window(sched, seconds)
        return await pub, late

    published, during = engine.call(watched)
    results: list[dict[str, Any]] = []
    for parent in pipes:
        results.extend(parent.recv())
    for proc in procs:
        proc.join(60)
    hub = engine.server.app.state.dashboard.hub if engine.server else None
    complete = [r for r in results if r["got"] == published and r["distinct"] == published]
    lat = [x for r in results for x in r["lat"]]
    return {
        "clients": len(results),
        "rate": rate,
        "published": published,
        "complete_clients": len(complete),
        "dropped_slow": hub.slow_clients_dropped if hub else None,
        "closed": [r["closed"] for r in results if r["closed"]][:5],
        "delivery_p50_ms": pct(lat, 0.5) if lat else None,
        "delivery_p99_ms": pct(lat, 0.99) if lat else None,
        "lateness_idle": summary(baseline),
        "lateness_publishing": summary(publishing),
        "lateness_watched": summary(during),
    }


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    return {"n": len(samples), "p50_ms": pct(samples, 0.5), "p99_ms": pct(samples, 0.99),
            "mean_ms": statistics.fmean(samples)}  # fmt: skip


# -- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller numbers, about a minute")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--ws-only", action="store_true", help="only fan-out and lateness")
    args = parser.parse_args()
    jobs, runs = (1_000, 100_000) if args.quick else (10_000, 1_000_000)
    if args.ws_only:
        jobs, runs = 100, 10_000
    requests = 50 if args.quick else 200
    clients, rate, seconds = (20, 1_000, 5.0) if args.quick else (100, 1_000, 15.0)
    now = datetime.now(UTC)
    print(f"agentcron dashboard bench: {jobs:,} jobs, {runs:,} runs, {clients} WS clients at "
          f"{rate:,} events/s; Python {platform.python_version()} on {platform.machine()}",
          flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="agentcron-dash-bench-") as tmp:
        db = Path(tmp) / "scheduler.db"
        load_s = bulk_runs(db, jobs, runs, now)
        print(f"  loaded {runs:,} runs in {load_s:.1f} s", flush=True)
        engine = EngineThread(f"sqlite:///{db.as_posix()}", jobs, every_second=20)
        started = time.perf_counter()
        engine.start()
        print(f"  engine + dashboard up with {jobs:,} jobs in {time.perf_counter() - started:.1f} s",
              flush=True)  # fmt: skip
        cache = engine.server.app.state.dashboard.cache if engine.server else None
        while cache is not None and len(cache) < jobs:
            time.sleep(0.2)  # the dashboard warms its per-job cache in the background
        print(f"  per-job cache warm after {time.perf_counter() - started:.1f} s", flush=True)
        # Steady state: the engine's start-up writes (10,000 job definitions, their audit
        # rows, the WAL checkpoint that follows) settle before anything is timed.
        time.sleep(0 if args.ws_only else 15)
        try:
            http = [] if args.ws_only else http_latency(engine, requests, jobs, now)
            ws = fanout_and_lateness(engine, clients, rate, seconds)
        finally:
            engine.stop()
    print_tables(http, ws)
    if args.json:
        print(json.dumps({"http": http, "ws": ws}, indent=2, default=str))


def print_tables(http: list[dict[str, Any]], ws: dict[str, Any]) -> None:
    print("\n| request (page of 100 rows) | p50 ms | p95 ms | p99 ms |")
    print("|---|---:|---:|---:|")
    for row in http:
        print(
            f"| {row['scenario']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['p99_ms']:.1f} |"
        )
    idle, publishing, watched = (
        ws["lateness_idle"],
        ws["lateness_publishing"],
        ws["lateness_watched"],
    )
    print("\n| WebSocket fan-out | value |")
    print("|---|---:|")
    print(f"| clients / events published | {ws['clients']} / {ws['published']:,} |")
    print(f"| clients that received every event | {ws['complete_clients']} |")
    print(f"| clients dropped as too slow | {ws['dropped_slow']} |")
    if ws["delivery_p50_ms"] is not None:
        print(
            f"| delivery latency p50 / p99 | {ws['delivery_p50_ms']:.1f} / {ws['delivery_p99_ms']:.1f} ms |"
        )
    print("\n| engine lateness (20 jobs every second) | runs | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    rows = (
        ("no events, no client", idle),
        (f"{ws['rate']:,} events/s, no client", publishing),
        (f"{ws['rate']:,} events/s, {ws['clients']} clients", watched),
    )
    for label, s in rows:
        if s.get("n"):
            print(
                f"| {label} | {s['n']} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {s['mean_ms']:.2f} |"
            )
    if ws["closed"]:
        print(f"\nclosed clients (first 5): {ws['closed']}", file=sys.stderr)


if __name__ == "__main__":
    main()
