"""Hostile and absurd input to queues and workers: refused at once with a `QueueInputError`
(exit 2 on the CLI), never a traceback, a hang, a wedged worker or a job stuck active."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import pytest
from queue_testlib import Env
from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.queue import Backoff, BulkJob, Job, QueueError, QueueInputError, open_queue
from agentcron.queue.sqlite import SqliteQueue

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), list(args))
    return result.exit_code, result.stderr


async def run_until(env: Env, task: asyncio.Task[Any], done: asyncio.Event, max_s: float) -> None:
    """Let time pass on `env` until `done` is set (the worker `task` must not have died)."""
    step_s = 0.05
    for _ in range(int(max_s / step_s)):
        if done.is_set() or task.done():
            break
        await env.advance(step_s)
    assert not task.done() or task.exception() is None, task.exception()
    assert done.is_set(), f"not done after {max_s} seconds"


# -- handlers ---------------------------------------------------------------------------
async def test_a_sync_handler_runs_once_and_completes_its_job(env: Env) -> None:
    q = env.queue
    job_id = await q.add("sync", {"n": 2})
    threads: list[int] = []

    def double(job: Job) -> int:  # docs/queue.md: handlers are "async or sync"
        threads.append(threading.get_ident())
        return int(job.data["n"]) * 2

    await env.drain(q.worker(double))
    info = await q.get(job_id)
    assert info is not None and (info.state, info.result, info.error) == ("completed", 4, None)
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()  # a blocking handler must not block the loop


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param(lambda attempt, error, job: math.nan, id="nan"),
        pytest.param(lambda attempt, error, job: 1 / 0, id="raises"),
    ],
)
async def test_a_backoff_strategy_that_returns_nan_or_raises_dead_letters_the_job(
    env: Env, strategy: Any
) -> None:
    q = env.queue
    job_id = await q.add("flaky", {}, attempts=3, backoff=Backoff("custom"))

    async def fail(job: Job) -> None:
        raise RuntimeError("boom")

    await env.drain(q.worker(fail, backoff_strategy=strategy), max_s=5)
    info = await q.get(job_id)
    assert info is not None and info.state == "failed"
    assert info.error is not None and "boom" in info.error and "backoff" in info.error


async def test_an_absurdly_long_retry_delay_is_capped_and_the_worker_keeps_going(
    env: Env,
) -> None:
    q = env.queue
    late = await q.add("late", {}, attempts=2, backoff=Backoff("custom"))
    done = asyncio.Event()

    async def handler(job: Job) -> None:
        if job.name == "late":
            await q.add("next", {})
            raise RuntimeError("try again in a million years")
        done.set()

    worker = q.worker(handler, backoff_strategy=lambda attempt, error, job: 1e300)
    task = asyncio.create_task(worker.run())
    try:
        await run_until(env, task, done, max_s=5)
    finally:
        await worker.close()
        await task
    info = await q.get(late)
    assert info is not None and info.state == "delayed"


def test_an_exponential_backoff_after_very_many_failures_is_capped_not_an_overflow() -> None:
    from agentcron.queue.base import MAX_DELAY_S

    assert Backoff("exponential", 1.0).delay_after(60) == MAX_DELAY_S
    assert Backoff("exponential", 1.0).delay_after(5000) == MAX_DELAY_S


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


async def test_an_error_that_cannot_be_printed_still_fails_the_attempt(env: Env) -> None:
    q = env.queue
    job_id = await q.add("odd", {})

    async def handler(job: Job) -> None:
        raise _Unprintable()

    await env.drain(q.worker(handler), max_s=5)
    info = await q.get(job_id)
    assert info is not None and info.state == "failed"
    assert info.error is not None and "_Unprintable" in info.error


async def test_a_result_that_cannot_be_shown_still_completes_the_job(env: Env) -> None:
    q = env.queue
    job_id = await q.add("odd", {})

    async def handler(job: Job) -> object:
        return _NoRepr()

    await env.drain(q.worker(handler), max_s=5)
    info = await q.get(job_id)
    assert info is not None and info.state == "completed"
    assert isinstance(info.result, str) and "_NoRepr" in info.result


# -- paused queues ----------------------------------------------------------------------
async def test_a_burst_worker_on_a_paused_queue_returns_once_its_delayed_job_is_due(
    env: Env,
) -> None:
    q = env.queue
    await q.pause()
    await q.add("later", {}, delay=0.2)
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)

    await env.drain(q.worker(handler), max_s=5)
    assert ran == []
    counts = await q.counts()
    assert (counts["delayed"], counts["paused"]) == (0, 1)


# -- absurd numbers ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delay": 1e300}, "delay"),
        ({"delay": 1e17}, "delay"),
        ({"delay": True}, "delay"),
        ({"attempts": 2**70}, "attempts"),
        ({"remove_on_complete": 2**70}, "remove_on_complete"),
        ({"remove_on_fail": 2**64}, "remove_on_fail"),
    ],
)
async def test_absurd_numbers_are_refused_at_add_and_nothing_is_enqueued(
    env: Env, kwargs: dict[str, Any], message: str
) -> None:
    q = env.queue
    with pytest.raises(QueueInputError, match=message):
        await q.add("bad", {}, **kwargs)
    with pytest.raises(QueueInputError, match=message):
        await q.add_bulk([BulkJob("good", {}), BulkJob("bad", {}, **kwargs)])
    assert sum((await q.counts()).values()) == 0


@pytest.mark.parametrize("timeout_s", [0, -1, math.nan, math.inf, 1e17, True, "5"])
async def test_a_worker_timeout_that_is_not_a_positive_number_of_seconds_is_refused(
    env: Env, timeout_s: Any
) -> None:
    with pytest.raises(QueueInputError, match="timeout_s must be > 0"):
        env.queue.worker(lambda job: None, timeout_s=timeout_s)


def test_a_backoff_longer_than_a_century_is_refused() -> None:
    with pytest.raises(QueueInputError, match="backoff"):
        Backoff("fixed", 1e17)


async def test_data_nested_too_deeply_is_refused_as_bad_input(env: Env) -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(QueueInputError, match="JSON"):
        await env.queue.add("deep", deep)
    assert sum((await env.queue.counts()).values()) == 0


async def test_clean_refuses_a_limit_too_large_for_the_backend(env: Env) -> None:
    with pytest.raises(QueueInputError, match="limit"):
        await env.queue.clean(0, 2**70)


async def test_get_of_an_id_no_job_can_have_is_none(env: Env) -> None:
    assert await env.queue.get("9" * 40) is None


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"rate_limit": (5, math.inf)}, id="rate-period-inf"),
        pytest.param({"lease_s": math.inf}, id="lease-inf"),
        pytest.param({"stalled_interval_s": math.inf}, id="stalled-inf"),
        pytest.param({"poll_s": math.nan}, id="poll-nan"),
    ],
)
async def test_infinite_worker_timings_are_refused(env: Env, options: dict[str, Any]) -> None:
    async def handler(job: Job) -> None:
        return None

    with pytest.raises(QueueInputError):
        env.queue.worker(handler, **options)


# -- opening ----------------------------------------------------------------------------
def test_a_non_numeric_sqlite_busy_timeout_is_bad_input() -> None:
    with pytest.raises(QueueInputError, match="busy_timeout_ms"):
        open_queue("sqlite:///x.db?busy_timeout_ms=soon", "jobs")


async def test_a_sqlite_file_under_a_plain_file_is_a_queue_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    q = SqliteQueue(tmp_path / "file" / "q.db", "jobs")
    with pytest.raises(QueueError, match="cannot open"):
        await q.counts()
    await q.close()


# -- the CLI ----------------------------------------------------------------------------
def test_absurd_cli_input_exits_2_with_one_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    (tmp_path / "file").write_text("not a directory")
    deep = "[" * 100_000 + "]" * 100_000
    for args in (
        ("queue", "add", "emails", "x", "--delay", "1e300", "--store", store),
        ("queue", "add", "emails", "x", "--attempts", "9" * 30, "--store", store),
        ("queue", "add", "emails", "x", "--data", deep, "--store", store),
        ("queue", "add", "emails", "x", "--store", f"{store}?busy_timeout_ms=soon"),
        ("queue", "clean", "emails", "--limit", "9" * 30, "--store", store),
        ("queue", "status", "emails", "--data-dir", str(tmp_path / "file")),
        ("worker", "--queue", "emails", "--burst", "--rate-limit", "5/inf", "--store", store),
        ("worker", "--queue", "emails", "--burst", "--lease", "inf", "--store", store),
    ):
        code, err = cli(*args)
        assert code == 2, (args[:4], err[-300:])
        assert err.startswith("agentcron: ") and err.count("\n") == 1, (args[:4], err[-300:])


async def test_a_refused_repeatable_leaves_nothing_behind_to_poison_later_ticks(env: Env) -> None:
    q = env.queue
    with pytest.raises(QueueInputError, match="name"):
        await q.add_repeatable("", {}, cron="* * * * *")
    key = await q.add_repeatable("tick", {}, cron="* * * * *")
    assert key
    assert (await q.counts())["delayed"] == 1


async def test_a_concurrency_no_backend_can_claim_is_refused(env: Env) -> None:
    async def handler(job: Job) -> None:
        return None

    with pytest.raises(QueueInputError, match="concurrency"):
        env.queue.worker(handler, concurrency=10**20)
