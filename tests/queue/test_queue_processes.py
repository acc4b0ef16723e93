"""The queue with real processes: workers SIGKILLed mid-job, three worker processes on one
SQLite file, a Redis server restarted mid-run, and interop with Node.js BullMQ."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_testlib import BACKENDS

from agentcron.queue import BulkJob, Job, Queue, open_queue
from helpers.redis_server import RedisServer

HERE = Path(__file__).resolve().parent
#: The Node.js BullMQ whose Lua scripts match those shipped in the Python `bullmq` package.
BULLMQ_NODE_VERSION = "5.53.0"
NODE_DIR = Path.home() / ".cache" / "agentcron-tests" / "bullmq-node"
#: Real waits on processes are bounded; they poll every `_POLL_S`.
_POLL_S = 0.05


def worker_process(url: str, queue: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """`agentcron worker` in its own process, jobs resolved by name from queue_handlers."""
    env = os.environ | {
        "QUEUE_TEST_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
    }
    argv = [sys.executable, "-m", "agentcron", "worker", "--queue", queue, "--store", url, *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def runs(log: Path) -> list[tuple[str, int, int]]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        job_id, pid, attempt = line.split()
        out.append((job_id, int(pid), int(attempt)))
    return out


async def wait_for(predicate_async: object, what: str, timeout_s: float = 30.0) -> None:
    """Poll `predicate_async()` until true, failing with `what` after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await predicate_async():  # type: ignore[operator]
            return
        await asyncio.sleep(_POLL_S)  # waiting on other processes, bounded (noqa: sleep-ok)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/scheduler.db"
    return str(request.getfixturevalue("redis_url"))


@pytest.mark.slow
async def test_a_job_whose_worker_is_killed_runs_again_on_another_worker(
    url: str, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    q = open_queue(url, "kill")
    try:
        job_id = await q.add("queue_handlers:hang_first", {}, attempts=1)
        victim = worker_process(url, "kill", log, "--lease", "1", "--stalled-interval", "0.3")

        async def started() -> bool:
            return len(runs(log)) == 1

        await wait_for(started, "the first worker to start the job")
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        info = await q.get(job_id)
        assert info is not None and info.state == "active"

        seen: list[int] = []

        async def rescue(job: Job) -> str:
            seen.append(job.attempt)
            return "rescued"

        rescuer = q.worker(rescue, lease_s=1, stalled_interval_s=0.3)
        task = asyncio.create_task(rescuer.run())

        async def completed() -> bool:
            job = await q.get(job_id)
            return job is not None and job.state == "completed"

        await wait_for(completed, "the job to be recovered and completed")
        await rescuer.close()
        await task
        assert seen == [2]  # the killed attempt counts
        info = await q.get(job_id)
        assert info is not None and info.result == "rescued"
    finally:
        await q.close()


@pytest.mark.slow
async def test_three_worker_processes_on_one_sqlite_file_run_each_job_exactly_once(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/data/scheduler.db"
    log = tmp_path / "runs.log"
    total = 600
    q = open_queue(url, "shared")
    try:
        await q.add("warm-up", None, job_id="warm-up")  # creates the file before the workers
        await q.clean(0, 0, "waiting")
        workers = [worker_process(url, "shared", log, "--concurrency", "4") for _ in range(3)]
        await q.add_bulk(
            [BulkJob("queue_handlers:record", {"pause_s": 0.005}) for _ in range(total)]
        )

        async def all_done() -> bool:
            return (await q.counts())["completed"] == total

        await wait_for(all_done, f"{total} jobs to complete", timeout_s=60)
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(20) for proc in workers]
        assert codes == [0, 0, 0]
        per_job = Counter(job_id for job_id, _, _ in runs(log))
        assert len(per_job) == total
        assert set(per_job.values()) == {1}
        assert await q.counts() == {
            "waiting": 0,
            "active": 0,
            "completed": total,
            "failed": 0,
            "delayed": 0,
            "paused": 0,
        }
    finally:
        await q.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, so it can be restarted."""
    try:
        server = RedisServer(tmp_path / "redis").start()
    except RuntimeError as exc:
        pytest.fail(f"queue tests need redis-server: {exc}")
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.redis
async def test_workers_reconnect_after_a_redis_restart_and_finish_the_queue(
    own_redis: RedisServer,
) -> None:
    total = 3000
    q = open_queue(own_redis.url, "restart")
    try:
        await q.add_bulk([BulkJob("job", {"i": i}) for i in range(total)])

        gate = asyncio.Event()
        started = 0

        async def handler(job: Job) -> None:
            # After 300 jobs, every slot blocks until Redis has been restarted under them.
            nonlocal started
            started += 1
            if started > 300:
                await gate.wait()

        worker = q.worker(handler, concurrency=10, lease_s=2, stalled_interval_s=0.5, poll_s=0.1)
        task = asyncio.create_task(worker.run())

        async def slots_blocked() -> bool:
            return started >= 310

        await wait_for(slots_blocked, "the first jobs to run")
        assert (await q.counts())["completed"] < total
        await asyncio.to_thread(own_redis.restart)
        gate.set()

        async def all_done() -> bool:
            try:
                return (await q.counts())["completed"] == total
            except Exception:
                return False

        await wait_for(all_done, "every job to complete after the restart", timeout_s=60)
        await worker.close()
        await task
        counts = await q.counts()
        assert (counts["completed"], counts["failed"], counts["waiting"]) == (total, 0, 0)
    finally:
        await q.close()


# -- Node.js BullMQ interop ---------------------------------------------------------------
@pytest.fixture(scope="session")
def bullmq_node() -> Path:
    """A directory with Node.js BullMQ installed (cached across runs) and our script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the interop test needs node and npm: run `make system-deps`")
    package = NODE_DIR / "node_modules" / "bullmq" / "package.json"
    installed = json.loads(package.read_text())["version"] if package.exists() else None
    if installed != BULLMQ_NODE_VERSION:
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        (NODE_DIR / "package.json").write_text(
            '{"name": "agentcron-bullmq-interop", "private": true}\n'
        )
        result = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                f"bullmq@{BULLMQ_NODE_VERSION}",
            ],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm install bullmq@{BULLMQ_NODE_VERSION} failed: {result.stderr[-2000:]}")
    shutil.copy(HERE / "bullmq_interop.mjs", NODE_DIR / "bullmq_interop.mjs")
    return NODE_DIR


def node(directory: Path, *args: str) -> object:
    result = subprocess.run(
        ["node", "bullmq_interop.mjs", *args],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1].split("/")[0]


@pytest.mark.slow
@pytest.mark.redis
async def test_a_nodejs_bullmq_worker_processes_jobs_added_by_agentcron(
    bullmq_node: Path, redis_url: str
) -> None:
    q: Queue = open_queue(redis_url, "interop")
    try:
        plain = await q.add("from-python", {"n": 4})
        urgent = await q.add("from-python", {"n": 7}, priority=1, job_id="py-custom")
        flaky = await q.add("from-python", {"n": 1, "fail": True}, attempts=2)
        seen = await asyncio.to_thread(
            node, bullmq_node, "work", port_of(redis_url), "interop", "3"
        )
        assert isinstance(seen, list)
        assert [s["id"] for s in seen][:2] == [plain, flaky]  # no priority runs before priority 1
        assert {s["id"] for s in seen} == {plain, urgent, flaky}
        assert all(s["name"] == "from-python" for s in seen)
        for job_id, n in ((plain, 4), (urgent, 7), (flaky, 1)):
            info = await q.get(job_id)
            assert info is not None and info.state == "completed"
            assert info.result == {"doubled": n * 2, "by": "node"}
        flaky_info = await q.get(flaky)
        assert flaky_info is not None and flaky_info.attempts_made == 2
    finally:
        await q.close()


@pytest.mark.slow
@pytest.mark.redis
async def test_agentcron_processes_jobs_added_by_nodejs_bullmq(
    bullmq_node: Path, redis_url: str
) -> None:
    ids = await asyncio.to_thread(node, bullmq_node, "add", port_of(redis_url), "interop")
    assert isinstance(ids, list) and ids[1] == "node-custom"
    q = open_queue(redis_url, "interop")
    try:
        seen: list[tuple[str, int]] = []

        async def handler(job: Job) -> dict[str, object]:
            seen.append((job.id, job.priority))
            return {"tripled": job.data["n"] * 3, "by": "python"}

        await asyncio.wait_for(q.worker(handler).run(burst=True), 30)
        assert {job_id for job_id, _ in seen} == set(ids)
        assert ("node-custom", 3) in seen
        report = await asyncio.to_thread(
            node, bullmq_node, "read", port_of(redis_url), "interop", *ids
        )
        assert isinstance(report, list)
        assert [r["state"] for r in report] == ["completed"] * 3
        assert [r["returnvalue"]["tripled"] for r in report] == [63, 15, 3]
    finally:
        await q.close()
