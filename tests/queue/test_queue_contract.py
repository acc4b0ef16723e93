"""The queue contract: every backend passes the same tests (SQLite on a virtual clock,
Redis with real short delays)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from queue_testlib import Env

from agentcron.events import QueueJobProgress, QueueJobStateChanged, QueuePaused, QueueResumed
from agentcron.queue import (
    Backoff,
    BulkJob,
    Job,
    QueueInputError,
    UnrecoverableError,
    open_queue,
)
from agentcron.queue.base import (
    MAX_JOB_ID_LENGTH,
    MAX_JOB_NAME_LENGTH,
    MAX_JOBS_LIMIT,
    MAX_REPEAT_KEY_LENGTH,
)

#: BullMQ (and so RedisQueue) stores times in whole milliseconds.
MS_TRUNCATION = 0.001


class Recorder:
    """A handler that records what it ran, and fails on demand."""

    def __init__(self, env: Env, *, fail: int = 0, error: type[Exception] = RuntimeError) -> None:
        self.env = env
        self.fail = fail
        self.error = error
        self.runs: list[tuple[str, str, int, float]] = []

    async def __call__(self, job: Job) -> Any:
        self.runs.append((job.id, job.name, job.attempt, self.env.now()))
        if len(self.runs) <= self.fail:
            raise self.error(f"boom {len(self.runs)}")
        return {"ok": job.name}

    @property
    def names(self) -> list[str]:
        return [name for _, name, _, _ in self.runs]


async def test_jobs_run_by_priority_then_in_the_order_they_were_added(env: Env) -> None:
    q = env.queue
    for name, priority in [("a", 0), ("b", 5), ("c", 1), ("d", 0), ("e", 1), ("f", 2**21)]:
        await q.add(name, {}, priority=priority)
    handler = Recorder(env)
    await env.drain(q.worker(handler, concurrency=1))
    assert handler.names == ["a", "d", "c", "e", "b", "f"]


async def test_a_delayed_job_waits_for_its_time(env: Env) -> None:
    q = env.queue
    # Measured from before the add: the delay counts from the add. Redis keeps BullMQ's
    # millisecond timestamps, so allow the truncation of one millisecond.
    started = env.now()
    await q.add("late", {}, delay=0.5)
    await q.add("now", {})
    assert (await q.counts())["delayed"] == 1
    handler = Recorder(env)
    await env.drain(q.worker(handler))
    assert handler.names == ["now", "late"]
    assert handler.runs[1][3] - started >= 0.5 - MS_TRUNCATION
    assert (await q.counts())["completed"] == 2


async def test_a_failing_job_is_retried_then_dead_lettered_with_its_error(env: Env) -> None:
    q = env.queue
    job_id = await q.add("flaky", {"n": 1}, attempts=3, backoff=Backoff("fixed", 0.2))
    handler = Recorder(env, fail=99)
    await env.drain(q.worker(handler))
    assert [attempt for _, _, attempt, _ in handler.runs] == [1, 2, 3]
    gaps = [b[3] - a[3] for a, b in zip(handler.runs, handler.runs[1:], strict=False)]
    assert all(gap >= 0.2 - MS_TRUNCATION for gap in gaps)
    info = await q.get(job_id)
    assert info is not None and info.state == "failed"
    assert info.error is not None and "boom 3" in info.error
    assert (await q.counts())["failed"] == 1


async def test_exponential_backoff_doubles_the_wait_after_each_failure(env: Env) -> None:
    q = env.queue
    await q.add("flaky", {}, attempts=3, backoff=Backoff("exponential", 0.2))
    handler = Recorder(env, fail=2)
    await env.drain(q.worker(handler))
    times = [t for _, _, _, t in handler.runs]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.2 - MS_TRUNCATION
    assert times[2] - times[1] >= 0.4 - MS_TRUNCATION
    if env.clock is not None:  # virtual time is exact
        assert times[1] - times[0] == pytest.approx(0.2)
        assert times[2] - times[1] == pytest.approx(0.4)


async def test_a_custom_backoff_asks_the_workers_strategy(env: Env) -> None:
    q = env.queue
    await q.add("flaky", {}, attempts=3, backoff=Backoff("custom"))
    seen: list[int] = []

    def strategy(attempt: int, error: BaseException, job: Job) -> float:
        seen.append(attempt)
        return -1 if attempt >= 2 else 0.1

    handler = Recorder(env, fail=99)
    await env.drain(q.worker(handler, backoff_strategy=strategy))
    assert seen == [1, 2]
    assert len(handler.runs) == 2
    assert (await q.counts())["failed"] == 1


async def test_an_unrecoverable_error_fails_the_job_without_its_other_attempts(env: Env) -> None:
    q = env.queue
    await q.add("doomed", {}, attempts=5)
    handler = Recorder(env, fail=99, error=UnrecoverableError)
    await env.drain(q.worker(handler))
    assert len(handler.runs) == 1
    assert (await q.counts())["failed"] == 1


async def test_a_job_id_is_enqueued_once(env: Env) -> None:
    q = env.queue
    first = await q.add("once", {"v": 1}, job_id="fire-1")
    second = await q.add("once", {"v": 2}, job_id="fire-1")
    assert first == second == "fire-1"
    assert (await q.counts())["waiting"] == 1
    info = await q.get("fire-1")
    assert info is not None and info.data == {"v": 1}


async def test_a_paused_queue_keeps_its_jobs_until_resumed(env: Env) -> None:
    q = env.queue
    await q.pause()
    await q.add("held", {})
    assert await q.is_paused()
    counts = await q.counts()
    assert (counts["waiting"], counts["paused"]) == (0, 1)
    handler = Recorder(env)
    await env.drain(q.worker(handler))
    assert handler.runs == []
    await q.resume()
    await env.drain(q.worker(handler))
    assert handler.names == ["held"]
    types = [e.type for e in await env.published()]
    assert QueuePaused.type in types and QueueResumed.type in types


async def test_clean_removes_finished_jobs_older_than_the_grace_up_to_the_limit(env: Env) -> None:
    q = env.queue
    await q.add_bulk([BulkJob(f"j{i}", {}) for i in range(3)])
    await env.drain(q.worker(Recorder(env), concurrency=3))
    assert await q.clean(3600, 0, "completed") == []
    await env.advance(0.05)
    removed = await q.clean(0, 2, "completed")
    assert len(removed) == 2
    assert (await q.counts())["completed"] == 1
    assert await q.get(removed[0]) is None


async def test_clean_can_drop_waiting_jobs(env: Env) -> None:
    q = env.queue
    await q.add("stale", {})
    await env.advance(0.05)
    assert len(await q.clean(0, 0, "waiting")) == 1
    assert (await q.counts())["waiting"] == 0


async def test_clean_takes_any_finite_grace_and_refuses_an_infinite_one(env: Env) -> None:
    # A grace of 1e20 s overflowed SQLite's integers (a 500 from the dashboard's clean).
    q = env.queue
    await q.add("young", {})
    await env.advance(0.05)
    assert await q.clean(1e20, 0, "waiting") == []
    for grace in (math.inf, math.nan, -1.0):
        with pytest.raises(QueueInputError, match="finite grace >= 0"):
            await q.clean(grace, 0, "waiting")
    assert (await q.counts())["waiting"] == 1


async def test_counts_report_every_state(env: Env) -> None:
    q = env.queue
    await q.add("ok", {})
    await q.add("bad", {})
    await q.add("later", {}, delay=3600)

    async def handler(job: Job) -> None:
        if job.name == "bad":
            raise RuntimeError("no")

    task = asyncio.create_task(q.worker(handler).run(burst=True))
    # The delayed job keeps the burst worker waiting: stop it once both ran.
    for _ in range(400):
        counts = await q.counts()
        if counts["completed"] + counts["failed"] == 2:
            break
        await env.advance(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await q.counts() == {
        "waiting": 0,
        "active": 0,
        "completed": 1,
        "failed": 1,
        "delayed": 1,
        "paused": 0,
    }


async def test_progress_is_stored_and_published(env: Env) -> None:
    q = env.queue
    job_id = await q.add("long", {})

    async def handler(job: Job) -> None:
        await job.progress(50)
        await job.progress(75.5)

    await env.drain(q.worker(handler))
    info = await q.get(job_id)
    assert info is not None and info.progress == 75.5
    progress = [e for e in await env.published() if isinstance(e, QueueJobProgress)]
    assert [e.progress for e in progress] == [50, 75.5]


async def test_progress_outside_0_to_100_is_refused(env: Env) -> None:
    q = env.queue
    await q.add("bad-progress", {})
    errors: list[str] = []

    async def handler(job: Job) -> None:
        try:
            await job.progress(150)
        except QueueInputError as exc:
            errors.append(str(exc))

    await env.drain(q.worker(handler))
    assert errors and "0 to 100" in errors[0]


async def test_state_changes_are_published_on_the_bus(env: Env) -> None:
    q = env.queue
    job_id = await q.add("watched", {})
    await env.drain(q.worker(Recorder(env)))
    states = [
        e.state
        for e in await env.published()
        if isinstance(e, QueueJobStateChanged) and e.job_id == job_id
    ]
    assert states == ["waiting", "active", "completed"]


async def test_the_rate_limit_caps_job_starts_per_window_across_the_queue(env: Env) -> None:
    q = env.queue
    await q.add_bulk([BulkJob(f"j{i}", {}) for i in range(5)])
    handler = Recorder(env)
    await env.drain(q.worker(handler, concurrency=5, rate_limit=(2, 0.5)))
    starts = sorted(t for _, _, _, t in handler.runs)
    assert len(starts) == 5
    # Starts are observed a little after the backend let them through: allow that much.
    slack_s = 0.0 if env.clock is not None else 0.1
    for i, start in enumerate(starts):
        assert sum(1 for s in starts[i:] if s - start < 0.5 - slack_s) <= 2
    assert starts[-1] - starts[0] >= 2 * 0.5 - slack_s  # five jobs need three windows


async def test_remove_on_complete_true_keeps_no_finished_job(env: Env) -> None:
    q = env.queue
    job_id = await q.add("gone", {}, remove_on_complete=True)
    await env.drain(q.worker(Recorder(env)))
    assert await q.get(job_id) is None
    assert (await q.counts())["completed"] == 0


async def test_remove_on_complete_n_keeps_the_n_most_recent(env: Env) -> None:
    q = env.queue
    ids = [await q.add(f"j{i}", {}, remove_on_complete=2) for i in range(4)]
    await env.drain(q.worker(Recorder(env)))
    assert (await q.counts())["completed"] == 2
    assert await q.get(ids[-1]) is not None


async def test_remove_on_fail_true_drops_the_dead_letter(env: Env) -> None:
    q = env.queue
    job_id = await q.add("gone", {}, remove_on_fail=True)
    await env.drain(q.worker(Recorder(env, fail=1)))
    assert await q.get(job_id) is None


async def test_retry_failed_puts_dead_letters_back_with_fresh_attempts(env: Env) -> None:
    q = env.queue
    job_id = await q.add("flaky", {}, attempts=2)
    handler = Recorder(env, fail=2)
    await env.drain(q.worker(handler))
    assert (await q.counts())["failed"] == 1
    assert await q.retry_failed() == 1
    await env.drain(q.worker(handler))
    info = await q.get(job_id)
    assert info is not None and info.state == "completed"
    assert info.result == {"ok": "flaky"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": object()}, "JSON"),
        ({"data": {"x": float("nan")}}, "JSON"),
        ({"delay": -1}, "delay"),
        ({"priority": -1}, "priority"),
        ({"priority": 2**21 + 1}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"attempts": 0}, "attempts"),
        ({"job_id": "123"}, "job_id"),
        ({"remove_on_complete": -3}, "remove_on_complete"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_enqueued(
    env: Env, kwargs: dict[str, Any], message: str
) -> None:
    q = env.queue
    args = {"data": {}} | kwargs
    data = args.pop("data")
    with pytest.raises(QueueInputError, match=message):
        await q.add("bad", data, **args)
    with pytest.raises(QueueInputError):
        await q.add_bulk([BulkJob("good", {}), BulkJob("bad", data, **args)])
    assert sum((await q.counts()).values()) == 0


async def test_a_bulk_add_returns_ids_in_order(env: Env) -> None:
    q = env.queue
    ids = await q.add_bulk(
        [BulkJob("a", 1), BulkJob("b", 2, job_id="b-id"), BulkJob("c", 3, delay=60)]
    )
    assert ids[1] == "b-id" and len(set(ids)) == 3
    counts = await q.counts()
    assert (counts["waiting"], counts["delayed"]) == (2, 1)


async def test_a_repeatable_enqueues_its_next_occurrence_once(env: Env) -> None:
    q = env.queue
    key = await q.add_repeatable("tick", {"n": 1}, cron="0 0 * * *", tz="Europe/Berlin")
    again = await q.add_repeatable("tick", {"n": 1}, cron="0 0 * * *", tz="Europe/Berlin")
    assert key == again
    assert (await q.counts())["delayed"] == 1
    assert await q.remove_repeatable(key)
    assert not await q.remove_repeatable(key)


async def test_removing_a_repeatable_also_removes_its_next_occurrence(env: Env) -> None:
    # Before, the occurrence already enqueued (delayed) still ran once after the removal.
    q = env.queue
    key = await q.add_repeatable("tick", {}, cron="0 0 * * *")
    other = await q.add_repeatable("tock", {}, cron="0 0 * * *", key="tick*?[x]")
    plain = await q.add("plain", {}, delay=3600)
    assert (await q.counts())["delayed"] == 3
    assert await q.remove_repeatable(key)
    assert (await q.counts())["delayed"] == 2
    assert await q.remove_repeatable(other)
    counts = await q.counts()
    assert counts["delayed"] == 1 and sum(counts.values()) == 1
    assert (await q.get(plain)) is not None


async def test_a_repeatable_runs_at_each_fire_time(env: Env) -> None:
    q = env.queue
    await q.add_repeatable("tick", {}, cron="* * * * * *")
    handler = Recorder(env)
    worker = q.worker(handler)
    task = asyncio.create_task(worker.run())
    for _ in range(300):
        if len(handler.runs) >= 2:
            break
        await env.advance(0.05)
    await worker.close()
    await task
    assert handler.names[:2] == ["tick", "tick"]
    assert handler.runs[0][0] != handler.runs[1][0]


async def test_a_bad_repeatable_schedule_is_refused(env: Env) -> None:
    with pytest.raises(QueueInputError, match="schedule"):
        await env.queue.add_repeatable("tick", {}, cron="not cron")
    assert sum((await env.queue.counts()).values()) == 0


async def test_close_lets_running_jobs_finish_and_records_them(env: Env) -> None:
    q = env.queue
    job_id = await q.add("slow", {})
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(job: Job) -> str:
        started.set()
        await release.wait()
        return "done"

    worker = q.worker(handler)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    closing = asyncio.create_task(worker.close())
    await asyncio.sleep(0)
    assert not closing.done()
    release.set()
    await asyncio.wait_for(closing, 10)
    await task
    info = await q.get(job_id)
    assert info is not None and info.state == "completed" and info.result == "done"


async def test_an_attempt_past_the_workers_timeout_fails_timed_out_and_is_retried(
    env: Env,
) -> None:
    # Before, a handler that never returned held its slot (and its renewed lease) for ever.
    q = env.queue
    job_id = await q.add("stuck", {}, attempts=2)
    attempts: list[int] = []
    never = asyncio.Event()
    cancelled: list[int] = []

    async def handler(job: Job) -> None:
        attempts.append(job.attempt)
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(job.attempt)
            raise

    await env.drain(q.worker(handler, timeout_s=0.3))
    assert attempts == [1, 2] and cancelled == [1, 2]
    info = await q.get(job_id)
    assert info is not None and info.state == "failed"
    assert info.error is not None and "JobTimeoutError: timed out after 0.3s" in info.error


async def test_a_sync_handler_past_the_timeout_frees_its_slot_and_its_result_is_ignored(
    env: Env,
) -> None:
    import threading

    q = env.queue
    stuck_id = await q.add("stuck", {})
    next_id = await q.add("next", {})
    release = threading.Event()

    def handler(job: Job) -> str:
        if job.name == "stuck":
            release.wait(30)
        return job.name

    worker = q.worker(handler, timeout_s=0.3)  # one slot: "next" runs after "stuck"
    try:
        if env.clock is None:
            await env.drain(worker)
        else:
            # Time stops once "stuck" timed out: "next" runs in a real thread, and a clock
            # moved on meanwhile would time it out too (as it did on a busy machine).
            task = asyncio.create_task(worker.run(burst=True))
            await env.clock.advance(0.35)
            await asyncio.wait_for(task, 20)
    finally:
        release.set()
    stuck, after = await q.get(stuck_id), await q.get(next_id)
    assert stuck is not None and stuck.state == "failed" and stuck.result is None
    assert after is not None and after.state == "completed" and after.result == "next"


async def test_a_handler_within_the_timeout_is_unaffected(env: Env) -> None:
    q = env.queue
    job_id = await q.add("quick", {})
    await env.drain(q.worker(Recorder(env), timeout_s=5))
    info = await q.get(job_id)
    assert info is not None and info.state == "completed" and info.result == {"ok": "quick"}


# -- listing jobs by state (Queue.jobs) -------------------------------------------------
async def _advance_virtual(env: Env, seconds: float) -> None:
    """Let virtual time pass on SQLite (Redis orders by its lists, not by time)."""
    if env.clock is not None:
        await env.clock.advance(seconds)


async def test_jobs_lists_waiting_jobs_in_the_order_they_will_run(env: Env) -> None:
    q = env.queue
    for name, priority in [("a", 0), ("b", 5), ("c", 1), ("d", 0), ("e", 1), ("f", 2**21)]:
        await q.add(name, {"n": name}, priority=priority)
        await _advance_virtual(env, 0.001)
    listed = await q.jobs("waiting")
    assert [j.name for j in listed] == ["a", "d", "c", "e", "b", "f"]
    assert {j.state for j in listed} == {"waiting"}
    assert [(j.priority, j.data) for j in listed[:3]] == [(0, {"n": "a"}), (0, {"n": "d"}),
                                                          (1, {"n": "c"})]  # fmt: skip
    # Pages cut anywhere, across Redis's wait list and prioritized set alike.
    assert [j.name for j in await q.jobs("waiting", offset=1, limit=2)] == ["d", "c"]
    assert [j.name for j in await q.jobs("waiting", offset=4, limit=50)] == ["b", "f"]
    assert await q.jobs("waiting", offset=6) == []
    # Each listed job is what `get` returns for it.
    assert [await q.get(j.id) for j in listed] == listed
    handler = Recorder(env)
    await env.drain(q.worker(handler, concurrency=1))
    assert handler.names == [j.name for j in listed]
    assert await q.jobs("waiting") == []


async def test_jobs_lists_delayed_jobs_by_due_time(env: Env) -> None:
    q = env.queue
    for name, delay in [("hour", 3600), ("minute", 60), ("ten", 600)]:
        await q.add(name, {}, delay=delay)
    assert [j.name for j in await q.jobs("delayed")] == ["minute", "ten", "hour"]
    assert [j.name for j in await q.jobs("delayed", offset=2)] == ["hour"]
    assert {j.state for j in await q.jobs("delayed")} == {"delayed"}


async def test_jobs_lists_active_jobs_by_start_oldest_first(env: Env) -> None:
    q = env.queue
    await q.add("late", {}, priority=5)
    await q.add("first", {})
    await q.add("second", {})
    backend: Any = q
    started = []
    for i in range(3):  # one claim at a time: "first", "second", then "late"
        claimed, _ = await backend.exchange([], 1, token=f"t{i}", lease_s=60, rate=None)
        started += [job.name for job in claimed]
        await _advance_virtual(env, 1)
    assert started == ["first", "second", "late"]
    active = await q.jobs("active")
    assert [j.name for j in active] == started
    assert {j.state for j in active} == {"active"}
    assert [j.name for j in await q.jobs("active", offset=1, limit=1)] == ["second"]


async def test_jobs_lists_finished_jobs_newest_first_with_their_result_or_error(
    env: Env,
) -> None:
    q = env.queue
    for name in ["one", "two", "three", "ok"]:
        await q.add(name, {}, attempts=1)

    async def handler(job: Job) -> Any:
        if job.name == "ok":
            return {"done": True}
        raise RuntimeError(f"{job.name} broke\nTraceback line")

    await env.drain(q.worker(handler, concurrency=1))
    failed = await q.jobs("failed")
    assert [j.name for j in failed] == ["three", "two", "one"]
    assert failed[0].state == "failed" and failed[0].finished_at is not None
    assert failed[0].error is not None and "three broke" in failed[0].error
    assert [j.name for j in await q.jobs("failed", offset=1, limit=1)] == ["two"]
    (completed,) = await q.jobs("completed")
    assert (completed.name, completed.result, completed.error) == ("ok", {"done": True}, None)
    assert [await q.get(j.id) for j in failed] == failed


async def test_jobs_of_a_paused_queue_are_listed_as_waiting_with_state_paused(env: Env) -> None:
    q = env.queue
    await q.add("before", {})
    await q.pause()
    await q.add("after", {})
    await q.add("urgent", {}, priority=1)
    listed = await q.jobs("waiting")
    assert [(j.name, j.state) for j in listed] == [
        ("before", "paused"), ("after", "paused"), ("urgent", "paused"),
    ]  # fmt: skip
    await q.resume()
    assert [j.state for j in await q.jobs("waiting")] == ["waiting"] * 3


async def test_jobs_lists_only_this_queues_jobs(env: Env) -> None:
    other = open_queue(env.url, "other", clock=env.clock)
    try:
        await other.add("theirs", {})
        await env.queue.add("ours", {})
        assert [j.name for j in await env.queue.jobs("waiting")] == ["ours"]
        assert [j.name for j in await other.jobs("waiting")] == ["theirs"]
    finally:
        await other.close()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"state": "paused"}, "state"),
        ({"state": "everything"}, "state"),
        ({"state": 1}, "state"),
        ({"state": "failed", "offset": -1}, "offset"),
        ({"state": "failed", "offset": True}, "offset"),
        ({"state": "failed", "offset": 2**31}, "offset"),
        ({"state": "failed", "limit": 0}, "limit"),
        ({"state": "failed", "limit": 1001}, "limit"),
        ({"state": "failed", "limit": 2.5}, "limit"),
        ({"state": "failed", "limit": "10"}, "limit"),
    ],
)
async def test_jobs_refuses_bad_arguments_naming_them(
    env: Env, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(QueueInputError, match=named):
        await env.queue.jobs(**kwargs)


async def test_jobs_takes_the_largest_page(env: Env) -> None:
    await env.queue.add_bulk([BulkJob(f"j{i}") for i in range(1001)])
    assert len(await env.queue.jobs("waiting", limit=MAX_JOBS_LIMIT)) == MAX_JOBS_LIMIT
    (last,) = await env.queue.jobs("waiting", offset=MAX_JOBS_LIMIT, limit=MAX_JOBS_LIMIT)
    assert last.name == "j1000"


# -- input hardening shared by the backends (moved from test_sqlite_hardening_s26.py) ----
_NOT_UTF8 = "\udcff"  # what Python makes of the byte 0xff in a command line or file name


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda q: q.add(_NOT_UTF8), "job name", id="add-name"),
        pytest.param(lambda q: q.add("n", job_id=_NOT_UTF8), "job_id", id="add-job_id"),
        pytest.param(
            lambda q: q.add_bulk([BulkJob("ok"), BulkJob(f"x{_NOT_UTF8}")]),
            "job name",
            id="add_bulk-name",
        ),
        pytest.param(
            lambda q: q.add_bulk([BulkJob("ok"), BulkJob("n", job_id=_NOT_UTF8)]),
            "job_id",
            id="add_bulk-job_id",
        ),
        pytest.param(lambda q: q.get(_NOT_UTF8), "job id", id="get"),
        pytest.param(
            lambda q: q.add_repeatable("n", cron="* * * * *", key=_NOT_UTF8),
            "repeat key",
            id="add_repeatable-key",
        ),
        pytest.param(
            lambda q: q.add_repeatable(_NOT_UTF8, cron="* * * * *"),
            "job name",
            id="add_repeatable-name",
        ),
        pytest.param(
            lambda q: q.remove_repeatable(_NOT_UTF8), "repeat key", id="remove_repeatable"
        ),
    ],
)
async def test_text_that_is_not_utf8_is_bad_input_naming_the_field(
    env: Env, call: Any, field: str
) -> None:
    # (SqliteQueue.add_repeatable hashed the name into its key before checking it:
    # UnicodeEncodeError.)
    with pytest.raises(QueueInputError, match=f"{field} must be valid UTF-8"):
        await call(env.queue)
    assert sum((await env.queue.counts()).values()) == 0


async def test_job_names_ids_and_repeat_keys_are_capped(env: Env) -> None:
    q = env.queue
    assert await q.add("n" * MAX_JOB_NAME_LENGTH)
    assert await q.add("n", job_id="i" * MAX_JOB_ID_LENGTH) == "i" * MAX_JOB_ID_LENGTH
    key = "k" * MAX_REPEAT_KEY_LENGTH
    assert await q.add_repeatable("n", cron="0 0 * * *", key=key) == key
    assert await q.remove_repeatable(key)
    with pytest.raises(QueueInputError, match="job name is 501 characters long"):
        await q.add("n" * (MAX_JOB_NAME_LENGTH + 1))
    with pytest.raises(QueueInputError, match="job_id is 301 characters long"):
        await q.add("n", job_id="i" * (MAX_JOB_ID_LENGTH + 1))
    with pytest.raises(QueueInputError, match="repeat key is 201 characters long"):
        await q.add_repeatable("n", cron="0 0 * * *", key="k" * (MAX_REPEAT_KEY_LENGTH + 1))
    assert (await q.counts())["delayed"] == 0  # the refused repeatable enqueued nothing


@pytest.mark.parametrize("key", ["", 5, b"k"])
async def test_a_repeat_key_that_is_not_a_non_empty_string_is_refused(
    env: Env, key: object
) -> None:
    # Redis took "" as "derive the key" and stored 5 as "5"; SQLite refused both.
    with pytest.raises(QueueInputError, match="repeat key must be a non-empty string"):
        await env.queue.add_repeatable("n", cron="0 0 * * *", key=key)  # type: ignore[arg-type]
    assert sum((await env.queue.counts()).values()) == 0


@pytest.mark.parametrize("key", [5, None, b"k"])
async def test_remove_repeatable_refuses_a_key_that_is_not_a_string(env: Env, key: object) -> None:
    # Redis failed with AttributeError (key.replace) instead of bad input.
    with pytest.raises(QueueInputError, match="repeat key must be a string"):
        await env.queue.remove_repeatable(key)  # type: ignore[arg-type]


async def test_get_matches_ids_exactly(env: Env) -> None:
    q = env.queue
    job_id = await q.add("one")
    assert job_id == "1"
    for alias in ("01", "\u0661", "\u00b2", "+1", " 1", "1 ", "1.0"):
        assert await q.get(alias) is None, alias
    info = await q.get("1")
    assert info is not None and info.name == "one"


async def test_get_of_an_id_that_names_no_job_is_none(env: Env) -> None:
    # On Redis these are BullMQ's own keys next to the job hashes (bull:<queue>:<id>): "meta"
    # and the repeatables' hash were read as bogus jobs, the others failed with WRONGTYPE.
    q = env.queue
    job_id = await q.add("x", attempts=2)
    await q.add_repeatable("tick", cron="0 0 * * *")
    claimed, _ = await q.exchange([], 1, token="t", lease_s=60, rate=None)  # type: ignore[attr-defined]
    assert [job.id for job in claimed] == [job_id]
    await q.pause()
    for other in ("meta", "id", "events", "wait", "active", "delayed", "marker", "stalled-check",
                  f"{job_id}:lock", "agentcron:repeatables", "repeat", ""):  # fmt: skip
        assert await q.get(other) is None, other
    assert (await q.get(job_id)) is not None


async def test_retry_failed_clears_the_error_result_and_progress(env: Env) -> None:
    q = env.queue

    async def half_then_fail(job: Job) -> None:
        await job.progress(50)
        raise RuntimeError("boom")

    job_id = await q.add("x")
    await env.drain(q.worker(half_then_fail))
    failed = await q.get(job_id)
    assert failed is not None and failed.error and failed.progress == 50
    assert failed.finished_at is not None and failed.attempts_made == 1
    assert await q.retry_failed() == 1
    info = await q.get(job_id)
    assert info is not None and info.state == "waiting"
    assert (info.error, info.progress, info.result, info.attempts_made, info.finished_at) == (
        None, 0, None, 0, None,
    )  # fmt: skip
    handler = Recorder(env)
    await env.drain(q.worker(handler))
    assert [attempt for _, _, attempt, _ in handler.runs] == [1]
    done = await q.get(job_id)
    assert done is not None and (done.state, done.error) == ("completed", None)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("5",), "grace"),
        ((None,), "grace"),
        ((True,), "grace"),
        ((1, "2"), "limit"),
        ((1, 2.0), "limit"),
        ((1, False), "limit"),
    ],  # fmt: skip
)
async def test_clean_refuses_arguments_of_the_wrong_type(
    env: Env, args: tuple[object, ...], named: str
) -> None:
    await env.queue.add("kept")
    with pytest.raises(QueueInputError, match=f"clean {named} must be"):
        await env.queue.clean(*args)  # type: ignore[arg-type]
    assert (await env.queue.counts())["waiting"] == 1


async def test_a_retried_job_keeps_its_priority(env: Env) -> None:
    # Redis put retried jobs on BullMQ's wait list (its `retryJobs` ignores priorities), so
    # a retried priority-5 job ran before priority-0 and priority-1 jobs added after it.
    q = env.queue
    await q.add("p5", {}, priority=5)
    await env.drain(q.worker(Recorder(env, fail=1)))
    assert (await q.counts())["failed"] == 1
    assert await q.retry_failed() == 1
    await _advance_virtual(env, 0.001)
    await q.add("p1", {}, priority=1)
    await q.add("p0", {})
    assert [j.name for j in await q.jobs("waiting")] == ["p0", "p1", "p5"]
    handler = Recorder(env)
    await env.drain(q.worker(handler))
    assert handler.names == ["p0", "p1", "p5"]


async def test_retry_failed_on_a_paused_queue_keeps_the_jobs_until_resumed(env: Env) -> None:
    q = env.queue
    await q.add("plain", {})
    await q.add("urgent", {}, priority=1)
    await env.drain(q.worker(Recorder(env, fail=2)))
    await q.pause()
    assert await q.retry_failed() == 2
    counts = await q.counts()
    assert (counts["failed"], counts["waiting"], counts["paused"]) == (0, 0, 2)
    handler = Recorder(env)
    await env.drain(q.worker(handler))
    assert handler.runs == []
    await q.resume()
    await env.drain(q.worker(handler))
    assert handler.names == ["plain", "urgent"]
    assert await q.retry_failed() == 0
