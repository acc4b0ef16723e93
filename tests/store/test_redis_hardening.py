"""The Redis store against a hostile server: hand-edited keys, a full server, lost data.

Reads skip (and log) a record they cannot read instead of failing the dashboard or the
engine; refusals of the server are `StoreError`s that say what is wrong; a Redis restarted
empty is marked again so that nodes starting later do not refuse it as foreign.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from agentcron import Scheduler
from agentcron.handlers import RunContext
from agentcron.models import FireStart, NodeHeartbeat, RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.base import StoreError
from agentcron.store.redis import RedisStore
from agentcron.testing import VirtualClock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.redis_server import RedisServer

pytestmark = pytest.mark.redis

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_run(run_id: str, status: RunStatus = RunStatus.succeeded, **fields: object) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        job_id="digest",
        scheduled_for=T0,
        status=status,
        node_id="n1",
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis", durable=False).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def raw(server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        yield client


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore]:
    backend = RedisStore(server.url, write_retry_s=0.0)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


GARBAGE_JOBS = {
    "not-json": "{oops",
    "not-an-object": "[1, 2]",
    "no-definition": '{"paused": false}',
    "definition-a-list": (
        '{"definition": [1], "paused": false, "pause_note": null, "created_at": null,'
        ' "updated_at": null, "version": 1}'
    ),
    "paused-a-string": (
        '{"definition": {}, "paused": "yes", "pause_note": null, "created_at": null,'
        ' "updated_at": null, "version": 1}'
    ),
    "naive-time": (
        '{"definition": {}, "paused": false, "pause_note": null,'
        ' "created_at": "2026-03-01T12:00:00", "updated_at": null, "version": 1}'
    ),
}


# -- hand-edited records -------------------------------------------------------------------
async def test_jobs_whose_records_are_garbage_are_skipped_with_a_log_naming_them(
    store: RedisStore, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    good = await store.save_job(StoredJob(id="good", definition={"x": 1}), actor="cli")
    for job_id, value in GARBAGE_JOBS.items():
        raw.hset("agentcron:jobs", job_id, value)
    raw.hset("agentcron:jobs", b"\xff\xfe", GARBAGE_JOBS["not-json"])
    with caplog.at_level(logging.ERROR, "agentcron.store.redis"):
        assert await store.list_jobs() == [good]
        assert await store.get_job("not-json") is None
    for job_id in GARBAGE_JOBS:
        assert any(job_id in r.getMessage() for r in caplog.records), job_id


async def test_unreadable_scheduling_state_reads_as_none_and_keeps_the_job(
    store: RedisStore, raw: redis.Redis
) -> None:
    await store.save_job(StoredJob(id="good", definition={"x": 1}), actor="cli")
    raw.hset("agentcron:jobstate", "good", "garbage")
    [job] = await store.list_jobs()
    assert job.id == "good" and job.next_run is None and job.last_fire is None


async def test_a_job_saved_over_a_garbage_record_replaces_it_and_can_be_deleted(
    store: RedisStore, raw: redis.Redis
) -> None:
    raw.hset("agentcron:jobs", "digest", "{oops")
    for conflict in ("replace", "keep"):
        raw.hset("agentcron:jobs", "digest", "{oops")
        saved = await store.save_job(
            StoredJob(id="digest", definition={"x": 1}), actor="cli", conflict=conflict
        )
        assert await store.get_job("digest") == saved
    raw.hset("agentcron:jobs", "digest", "{oops")
    assert await store.delete_job("digest", actor="cli")
    assert await store.get_job("digest") is None


async def test_runs_whose_records_are_garbage_are_skipped_by_every_read(
    store: RedisStore, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await store.record_run(a_run("good"))
    await store.record_run(a_run("odd", RunStatus.running, lease_expires_at=T0))
    bad_documents = {
        "odd": '{"run_id": "odd", "status": "running"}',  # fields missing
        "x1": "{oops",
        "x2": '{"run_id": "x2", "status": "exploded"}',
    }
    for run_id, document in bad_documents.items():
        raw.hset(f"agentcron:run:{run_id}", mapping={"d": document, "s": "running", "j": "digest"})
        raw.zadd("agentcron:runs", {run_id: 1})
        raw.zadd("agentcron:runs:digest", {run_id: 1})
    with caplog.at_level(logging.ERROR, "agentcron.store.redis"):
        assert [r.run_id for r in await store.list_runs(RunQuery())] == ["good"]
        only_some = RunQuery(job_id="digest", statuses=(RunStatus.running, RunStatus.succeeded))
        assert [r.run_id for r in await store.list_runs(only_some)] == ["good"]
        assert await store.get_run("x1") is None
        assert (await store.run_stats("digest")).total == 1
        assert await store.interrupt_expired(T0 + timedelta(hours=1)) == []
    assert "unreadable" in caplog.text


async def test_a_run_whose_stored_fence_is_garbage_can_be_recorded_again(
    store: RedisStore, raw: redis.Redis
) -> None:
    await store.record_run(a_run("r1", RunStatus.running))
    raw.hset("agentcron:run:r1", "f", "not a number")
    assert await store.record_run(a_run("r1"))
    assert await store.get_run("r1") == a_run("r1")


async def test_pruning_deletes_a_final_run_whose_job_field_is_missing(
    store: RedisStore, raw: redis.Redis
) -> None:
    await store.record_run(a_run("r1"))
    raw.hdel("agentcron:run:r1", "j")
    assert await store.prune_runs(keep_per_job=0) == 1
    assert await store.list_runs(RunQuery()) == []


async def test_garbage_heartbeats_and_audit_entries_are_skipped(
    store: RedisStore, raw: redis.Redis
) -> None:
    beat = NodeHeartbeat(node_id="n1", sequence=1, sent_at=T0)
    await store.write_heartbeat(beat)
    await store.save_job(StoredJob(id="digest", definition={}), actor="cli")
    raw.hset("agentcron:nodes", "n2", "{oops")
    raw.hset("agentcron:nodes", "n3", '{"node_id": "n3", "sequence": "one"}')
    raw.lpush("agentcron:audit", "{oops", '{"job_id": 1}')
    assert await store.list_heartbeats() == [beat]
    assert [e.action for e in await store.list_audit()] == ["added"]


async def test_state_that_is_not_utf8_reads_as_text(store: RedisStore, raw: redis.Redis) -> None:
    raw.hset("agentcron:state", "k", b"ok\xff")
    assert await store.get_state("k") == "ok\ufffd"


async def test_a_key_of_the_wrong_type_is_a_store_error_saying_so(
    store: RedisStore, raw: redis.Redis
) -> None:
    raw.set("agentcron:nodes", "a string")
    with pytest.raises(StoreError, match="another type"):
        await store.list_heartbeats()


async def test_a_schema_version_that_is_not_a_number_is_refused_at_open(
    server: RedisServer, raw: redis.Redis
) -> None:
    raw.hset("agentcron:meta", mapping={"app": "agentcron-store", "schema": "two"})
    with pytest.raises(StoreError, match="schema version"):
        await RedisStore(server.url).open()


# -- a full server -------------------------------------------------------------------------
async def test_writes_refused_for_lack_of_memory_are_store_errors_and_write_nothing(
    store: RedisStore, raw: redis.Redis
) -> None:
    await store.save_job(StoredJob(id="digest", definition={"x": 1}), actor="cli")
    raw.config_set("maxmemory-policy", "noeviction")
    raw.config_set("maxmemory", 1)  # below what the server already uses: every write refused
    before = {key: raw.dump(key) for key in raw.keys("agentcron:*")}
    run = a_run("r1", RunStatus.running, lease_expires_at=T0)
    writes = [
        store.save_job(StoredJob(id="other", definition={}), actor="cli"),
        store.save_job(StoredJob(id="digest", definition={"x": 2}), actor="cli"),
        store.set_paused("digest", True, actor="cli"),
        store.delete_job("digest", actor="cli"),
        store.claim_fire("digest", T0, "n1", now=T0),
        store.start_fires([FireStart("digest", T0, None, T0, run)], "n1", now=T0),
        store.record_run(run),
    ]
    for write in writes:
        with pytest.raises(StoreError, match="out of memory"):
            await write
    assert store.available  # the server answers: not an outage
    assert {key: raw.dump(key) for key in raw.keys("agentcron:*")} == before
    raw.config_set("maxmemory", 0)
    assert await store.record_run(run)


# -- a Redis restarted empty ---------------------------------------------------------------
async def test_after_redis_restarted_empty_a_node_starting_later_is_not_refused(
    server: RedisServer, store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.save_job(StoredJob(id="digest", definition={"x": 1}), actor="cli")
    server.stop(kill=True)
    server.start()  # no persistence: everything, the prefix's marker included, is gone
    assert await store.claim_fire("digest", T0, "n1", now=T0)  # the running node goes on
    with caplog.at_level(logging.ERROR, "agentcron.store.redis"):
        later = RedisStore(server.url)
        await later.open()
        await later.close()
    assert "lost agentcron's data" in caplog.text
    assert not await store.claim_fire("digest", T0, "n2", now=T0)


async def test_a_heartbeat_after_redis_restarted_empty_marks_the_prefix_again(
    server: RedisServer, store: RedisStore, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    server.stop(kill=True)
    server.start()
    with caplog.at_level(logging.ERROR, "agentcron.store.redis"):
        await store.write_heartbeat(NodeHeartbeat(node_id="n1", sequence=1, sent_at=T0))
    assert "lost agentcron's data" in caplog.text
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        assert client.hget("agentcron:meta", "app") == b"agentcron-store"


async def until(condition: Callable[[], object], *, timeout_s: float = 20) -> None:
    """Wait for real Redis round trips the virtual clock set off (bounded)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)  # waiting for Redis replies (noqa: sleep-ok)

    await asyncio.wait_for(poll(), timeout=timeout_s)


async def renewals_until(clock: VirtualClock, condition: Callable[[], object]) -> None:
    """Let the lease renewals at the next 10, 20 and 30 s (`lease_s=30`) run until
    `condition` holds. More than one: a renewal still busy with real Redis round trips
    when the virtual clock moves on is next due 10 s after it ends, and one that meets a
    restarting server tries again at the next."""
    for _ in range(3):
        await clock.advance(10)
        with contextlib.suppress(TimeoutError):
            await until(condition, timeout_s=5)
        if condition():
            return
    raise AssertionError("not done by three lease renewals")


class LongRun:
    """A scheduler on a Redis store whose job "digest" (every minute) runs until released;
    `started()` runs the clock to its first fire and returns that run's id."""

    def __init__(self, server: RedisServer) -> None:
        self.clock = VirtualClock(T0)
        self.release = asyncio.Event()
        self.run_ids: list[str] = []
        self.store = RedisStore(server.url, clock=self.clock)
        self.sched = Scheduler(store=self.store, clock=self.clock, node_id="n1", lease_s=30)
        self.sched.add_job("digest", trigger="0 * * * * *", handler=self._long)

    async def _long(self, ctx: RunContext) -> None:
        self.run_ids.append(ctx.run_id)
        await self.release.wait()

    async def started(self) -> str:
        await self.sched.flush()
        await self.clock.advance(60)
        await until(lambda: self.run_ids)
        [run_id] = self.run_ids
        return run_id

    async def ended(self, run_id: str) -> RunRecord | None:
        self.release.set()
        await self.sched.drain()
        return await self.store.get_run(run_id)


@contextlib.asynccontextmanager
async def long_run(server: RedisServer) -> AsyncIterator[LongRun]:
    """`LongRun`, started; its run is released before the scheduler stops (a stop waits
    for it on the virtual clock) and its store closed after, whatever the test did."""
    run = LongRun(server)
    try:
        async with run.sched:
            try:
                yield run
            finally:
                run.release.set()
    finally:
        await run.store.close()


async def test_a_run_goes_on_and_the_jobs_come_back_when_redis_restarts_empty(
    server: RedisServer, raw: redis.Redis
) -> None:
    async with long_run(server) as lr:
        lr.sched.add_job("report", trigger="0 0 * * *", handler=quick)
        lr.sched.pause("report", note="on holiday")
        run_id = await lr.started()
        server.stop(kill=True)
        server.start()  # no persistence: jobs, runs, claims and the marker are gone
        assert raw.hgetall("agentcron:jobs") == {}
        # Jobs first, then the running runs.
        await renewals_until(lr.clock, lambda: raw.exists(f"agentcron:run:{run_id}"))
        run = await lr.store.get_run(run_id)
        assert run is not None and run.status == RunStatus.running  # not cancelled
        assert run.lease_expires_at is not None and run.lease_expires_at > lr.clock.now()
        report = await lr.store.get_job("report")
        assert report is not None and report.paused and report.pause_note == "on holiday"
        assert await lr.store.get_job("digest") is not None
        done = await lr.ended(run_id)
        assert done is not None and done.status == RunStatus.succeeded


async def test_a_run_whose_record_vanished_is_written_back_not_cancelled_as_taken_over(
    server: RedisServer, raw: redis.Redis
) -> None:
    async with long_run(server) as lr:
        run_id = await lr.started()
        raw.delete(f"agentcron:run:{run_id}")  # evicted, or deleted by hand
        # The lease renewal finds no record.
        await renewals_until(lr.clock, lambda: raw.exists(f"agentcron:run:{run_id}"))
        done = await lr.ended(run_id)
        assert done is not None and done.status == RunStatus.succeeded


async def quick(ctx: RunContext) -> None:
    pass


async def test_every_node_writes_back_its_jobs_when_redis_restarts_empty(
    server: RedisServer, raw: redis.Redis
) -> None:
    clock = VirtualClock(T0)
    first = RedisStore(server.url, clock=clock)
    second = RedisStore(server.url, clock=clock)
    # Lease renewals every 10 s on n1 and every 20 s on n2: n1 marks the prefix again first.
    n1 = Scheduler(store=first, clock=clock, node_id="n1", lease_s=30)
    n2 = Scheduler(store=second, clock=clock, node_id="n2", lease_s=60)
    n1.add_job("digest", trigger="0 0 * * *", handler=quick)
    try:
        async with n1:
            await n1.flush()
            n2.add_job("report", trigger="0 0 * * *", handler=quick)  # n1 does not know it
            async with n2:
                await n2.flush()
                server.stop(kill=True)
                server.start()  # no persistence: the jobs and the marker are gone
                await renewals_until(clock, lambda: raw.hexists("agentcron:jobs", "digest"))
                await renewals_until(clock, lambda: raw.hexists("agentcron:jobs", "report"))
                assert (first.data_losses, second.data_losses) == (1, 1)
    finally:
        await first.close()
        await second.close()


async def test_a_scheduler_notices_the_loss_when_another_process_marked_the_prefix_first(
    server: RedisServer, raw: redis.Redis
) -> None:
    clock = VirtualClock(T0)
    store = RedisStore(server.url, clock=clock)
    sched = Scheduler(store=store, clock=clock, node_id="n1", lease_s=30)
    sched.add_job("digest", trigger="0 0 * * *", handler=quick)
    try:
        async with sched:
            await sched.flush()
            server.stop(kill=True)
            server.start()
            cli = RedisStore(server.url)  # `agentcron jobs list` run meanwhile
            await cli.open()
            await cli.close()
            await renewals_until(clock, lambda: raw.hexists("agentcron:jobs", "digest"))
            assert store.data_losses == 1
    finally:
        await store.close()


async def test_a_scheduler_stopped_while_its_side_tasks_read_redis_stops(
    server: RedisServer,
) -> None:
    # redis-py sends each command through `asyncio.wait_for` (a socket timeout is set), and
    # on Python 3.11 `wait_for` swallows a cancellation that arrives as the command
    # completes: the jobs watcher, cancelled by `stop()` during its first read, read on,
    # and `stop()` right after start waited for it for ever (the engine benchmark's
    # registration of 0 jobs on Redis hung).
    clock = VirtualClock(T0)
    for _ in range(3):
        sched = Scheduler(server.url, clock=clock, node_id="n1")
        await sched.start()
        await sched.flush()
        # A hang guard, not a timing: stop() takes milliseconds. (Its cancellation would
        # reach the watcher that stop() awaits and end the hang, hence `expired()`.)
        async with asyncio.timeout(30) as guard:
            await sched.stop(grace_s=0)
        assert not guard.expired()
        assert sched.health()["status"] == "stopped"
