"""Redis-only sides of the SQLite queue's session-26 fixes (the backend-independent ones are
in the contract suite, test_queue_contract.py): `retry_failed` also clears what Node.js
BullMQ writes (a stack trace), moves every failed job however many, and leaves jobs that
Node.js BullMQ sees as waiting, in priority order; the CLI refuses text that is not UTF-8
before it talks to Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from queue_testlib import Env
from test_queue_contract import Recorder
from test_queue_processes import bullmq_node, node, port_of  # noqa: F401 (a fixture)

import agentcron.queue.redis as redis_backend
from agentcron.queue import BulkJob
from agentcron.queue.redis import RedisQueue

pytestmark = pytest.mark.redis


def _env(url: str, queue: RedisQueue) -> Env:
    from agentcron.events import EventBus

    return Env("redis", queue, url, None, EventBus())


async def test_retry_failed_clears_a_stack_trace_and_every_other_trace_of_the_failure(
    redis_url: str,
) -> None:
    # Node.js BullMQ writes `stacktrace` (and `processedOn`); BullMQ's retryJobs kept the
    # stack trace, the progress and the result of a retried job.
    q = RedisQueue(redis_url, "jobs")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        job_id = await q.add("x")
        env = _env(redis_url, q)
        await env.drain(q.worker(Recorder(env, fail=1)))
        key = f"bull:jobs:{job_id}"
        await client.hset(
            key,
            mapping={"stacktrace": '["Error: node says no\\n    at x.js:1"]', "progress": "50"},
        )
        assert await q.retry_failed() == 1
        raw = await client.hgetall(key)
        gone = {"failedReason", "returnvalue", "progress", "stacktrace", "finishedOn"}
        assert not gone & raw.keys() and "processedOn" not in raw, raw
        assert (raw["atm"], raw["ats"], raw["stc"]) == ("0", "0", "0")
        assert raw["name"] == "x" and raw["timestamp"]
        env.bus.close()
    finally:
        await client.aclose()
        await q.close()


async def test_retry_failed_moves_every_failed_job_batch_after_batch(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_backend, "_RETRY_BATCH", 2)
    q = RedisQueue(redis_url, "jobs")
    try:
        ids = await q.add_bulk([BulkJob(f"j{i}", priority=i % 2) for i in range(5)])
        env = _env(redis_url, q)
        await env.drain(q.worker(Recorder(env, fail=5), concurrency=5))
        assert (await q.counts())["failed"] == 5
        assert await q.retry_failed() == 5
        counts = await q.counts()
        assert (counts["failed"], counts["waiting"]) == (0, 5)
        assert sorted(j.id for j in await q.jobs("waiting")) == sorted(ids)
        assert await q.retry_failed() == 0
        env.bus.close()
    finally:
        await q.close()


async def test_a_failed_set_entry_without_its_job_is_dropped_not_enqueued(
    redis_url: str,
) -> None:
    q = RedisQueue(redis_url, "jobs")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await client.zadd("bull:jobs:failed", {"ghost": 1})
        assert await q.retry_failed() == 0
        assert await q.counts() == dict.fromkeys(
            ("waiting", "active", "completed", "failed", "delayed", "paused"), 0
        )
    finally:
        await client.aclose()
        await q.close()


@pytest.mark.slow
async def test_nodejs_bullmq_runs_retried_jobs_afresh_in_priority_order(
    bullmq_node: Path,  # noqa: F811
    redis_url: str,
) -> None:
    q = RedisQueue(redis_url, "interop")
    try:
        low = await q.add("from-python", {"n": 2}, priority=5)
        plain = await q.add("from-python", {"n": 3})
        env = _env(redis_url, q)
        await env.drain(q.worker(Recorder(env, fail=2)))
        env.bus.close()
        assert await q.retry_failed() == 2
        urgent = await q.add("from-python", {"n": 4}, priority=1)
        port = port_of(redis_url)
        report = await asyncio.to_thread(node, bullmq_node, "read", port, "interop", low, plain)
        assert isinstance(report, list)
        assert [(r["state"], r["attemptsMade"]) for r in report] == [
            ("prioritized", 0),
            ("waiting", 0),
        ]
        seen = await asyncio.to_thread(node, bullmq_node, "work", port, "interop", "3")
        assert isinstance(seen, list)
        assert [s["id"] for s in seen] == [plain, urgent, low]
        assert [s["attemptsMade"] for s in seen] == [0, 0, 0]
        for job_id, n in ((low, 2), (plain, 3)):
            info = await q.get(job_id)
            assert info is not None and info.state == "completed" and info.error is None
            assert info.result == {"doubled": n * 2, "by": "node"}
    finally:
        await q.close()


def test_cli_add_to_redis_of_bytes_that_are_not_utf8_exits_2_naming_the_field(
    redis_url: str,
) -> None:
    base: list[str | bytes] = [sys.executable, "-m", "agentcron", "queue", "add"]
    base += ["--store", redis_url, "q"]
    cases: list[tuple[list[str | bytes], str]] = [
        ([*base, b"\xff"], "job name"),
        ([*base, "n", "--job-id", b"\xff"], "job_id"),
    ]
    for argv, field in cases:
        proc = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 2, err
        assert err.startswith("agentcron: ") and err.count("\n") == 1, err
        assert f"{field} must be valid UTF-8" in err and "Traceback" not in err
    import redis

    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0  # refused before anything was written
