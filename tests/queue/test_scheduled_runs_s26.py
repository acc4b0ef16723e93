"""The run record of a scheduled fire handed to a queue always ends in a final status.

A worker running a dispatched fire (`ScheduledJobRunner`) holds a lease on the ``running``
record and renews it, so the scheduler's lease sweep (`Store.interrupt_expired`) finds the
run of a worker that died. When the queue's stalled-job recovery hands the job to another
worker, that claim is the next attempt of the same fire: the dead attempt is recorded
``interrupted`` and the job's `Retry` policy decides whether another attempt runs (with the
default policy, none does).

The process tests SIGKILL real ``agentcron worker --scheduled`` processes on a real SQLite
file; the policy tests call the runner on a virtual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from queue_testlib import T0

from agentcron.engine import Scheduler
from agentcron.jobs import Job as ScheduledJob
from agentcron.jobs import build_job
from agentcron.models import RunQuery, RunRecord, RunStatus, interrupted_error, new_run_id
from agentcron.queue import Job, UnrecoverableError, open_queue
from agentcron.queue.base import Backoff
from agentcron.queue.scheduled import ScheduledJobRunner, queue_dispatch
from agentcron.store.base import Store, open_store
from agentcron.testing import VirtualClock
from agentcron.triggers import Interval

HERE = Path(__file__).resolve().parent
MODULE = Path(__file__).stem
FIRE = T0 + timedelta(seconds=10)
KEY = f"job@{FIRE.isoformat()}"
#: Real waits on processes and on the store's writer thread are bounded; they poll.
_POLL_S = 0.05


# -- handlers the worker processes import (by reference) --------------------------------
def _log_start(attempt: int) -> None:
    line = f"{attempt} {os.getpid()}\n".encode()
    fd = os.open(os.environ["S26_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def hang_first_fire(ctx: Any) -> str:
    """Logs each attempt; the first hangs (until its worker is killed)."""
    _log_start(ctx.attempt)
    if ctx.attempt == 1:
        await asyncio.Event().wait()
    return "done"


# -- helpers ------------------------------------------------------------------------------
async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(_POLL_S)  # waiting on processes / the writer thread (noqa: sleep-ok)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def starts(log: Path) -> list[tuple[int, int]]:
    if not log.exists():
        return []
    return [
        (int(attempt), int(pid))
        for attempt, pid in (line.split() for line in log.read_text().splitlines())
    ]


def node_of(process: subprocess.Popen[bytes]) -> str:
    return f"{socket.gethostname()}:{process.pid}"


async def runs_of(store: Store, job_id: str = "job") -> list[RunRecord]:
    rows = await store.list_runs(RunQuery(job_id=job_id))
    return sorted(rows, key=lambda r: r.attempt)


class Fleet:
    """Worker processes of one test, killed at its end whatever happened."""

    def __init__(self, db: str, log: Path, cwd: Path) -> None:
        self.db, self.log, self.cwd = db, log, cwd
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        env = os.environ | {
            "S26_LOG": str(self.log),
            "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
        }
        argv = [
            sys.executable, "-m", "agentcron", "worker", "--queue", "agent", "--scheduled",
            "--store", self.db, "--data-dir", str(self.cwd / "data"),
            "--lease", "2", "--stalled-interval", "0.3",
        ]  # fmt: skip
        process = subprocess.Popen(
            argv, cwd=self.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[tuple[Fleet, Store]]:
    """A fire of job ``job`` (handler `hang_first_fire`) dispatched to queue ``agent`` by a
    scheduler on a real SQLite file; the retry policy comes from the test's parameter."""
    db = f"sqlite:///{tmp_path}/scheduler.db"
    workers = Fleet(db, tmp_path / "starts.log", tmp_path)
    store = open_store(db)
    await store.open()
    try:
        yield workers, store
    finally:
        workers.stop()
        await store.close()


async def dispatch_fire(db: str, **options: Any) -> None:
    clock = VirtualClock(T0)
    queue = open_queue(db, "agent", clock=clock)
    sched = Scheduler(db, clock=clock, dispatch=queue_dispatch({"agent": queue}))
    sched.add_job(
        "job",
        trigger=Interval(seconds=10),
        handler=f"{MODULE}:hang_first_fire",
        queue="agent",
        **options,
    )
    try:
        async with sched:
            await clock.advance(10)
    finally:
        await queue.close()


async def start_and_kill_first_attempt(workers: Fleet, store: Store) -> subprocess.Popen[bytes]:
    victim = workers.start()

    async def running() -> bool:
        rows = await runs_of(store)
        return len(starts(workers.log)) == 1 and [r.status for r in rows] == [RunStatus.running]

    await wait_for(running, "the first worker to run the fire")
    (run,) = await runs_of(store)
    assert run.node_id == node_of(victim)
    # The fix: the `running` record holds a lease (it had none, so no sweep ever found it).
    assert run.lease_expires_at is not None
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    return victim


async def settled(workers: Fleet, store: Store, state: str, runs: int) -> None:
    """Wait until the queue job is in `state` and the fire has `runs` run records, all final
    (the queue may fail a job that stalled twice before its runner recorded anything)."""

    async def check() -> bool:
        rows = await runs_of(store)
        return (
            await queue_state(workers.db) == state
            and len(rows) == runs
            and all(r.status.is_final for r in rows)
        )

    await wait_for(check, f"the queue job to be {state} and its run records final")


async def queue_state(db: str) -> str | None:
    queue = open_queue(db, "agent")
    try:
        info = await queue.get(KEY)
        return None if info is None else info.state
    finally:
        await queue.close()


# -- dying workers (real processes, SIGKILL) ----------------------------------------------
@pytest.mark.slow
async def test_the_run_of_a_killed_worker_ends_interrupted_and_without_retries_never_reruns(
    fleet: tuple[Fleet, Store],
) -> None:
    workers, store = fleet
    await dispatch_fire(workers.db)  # the default policy: one attempt
    victim = await start_and_kill_first_attempt(workers, store)
    workers.start()  # gets the job from the queue's stalled recovery

    await settled(workers, store, "failed", runs=1)
    # The job's policy allows one attempt: the queue's recovery did not run it again.
    assert starts(workers.log) == [(1, victim.pid)]
    (run,) = await runs_of(store)
    assert run.status == RunStatus.interrupted and run.attempt == 1
    assert run.error == interrupted_error(node_of(victim))
    assert run.finished_at is not None and run.lease_expires_at is None


@pytest.mark.slow
async def test_the_schedulers_lease_sweep_finds_the_run_of_a_killed_worker(
    fleet: tuple[Fleet, Store],
) -> None:
    workers, store = fleet
    await dispatch_fire(workers.db)
    victim = await start_and_kill_first_attempt(workers, store)
    (run,) = await runs_of(store)
    assert run.lease_expires_at is not None
    # The sweep of an `agentcron run` node once the lease has run out:
    (swept,) = await store.interrupt_expired(run.lease_expires_at)
    assert swept.run_id == run.run_id and swept.status == RunStatus.interrupted
    workers.start()

    await settled(workers, store, "failed", runs=1)
    assert starts(workers.log) == [(1, victim.pid)]
    (run,) = await runs_of(store)
    assert run.status == RunStatus.interrupted and run.attempt == 1
    assert run.error == interrupted_error(node_of(victim))


@pytest.mark.slow
async def test_with_a_retry_left_the_next_worker_runs_attempt_2_beside_the_interrupted_one(
    fleet: tuple[Fleet, Store],
) -> None:
    workers, store = fleet
    await dispatch_fire(workers.db, retry={"max_attempts": 2})
    victim = await start_and_kill_first_attempt(workers, store)
    rescuer = workers.start()

    await settled(workers, store, "completed", runs=2)
    assert starts(workers.log) == [(1, victim.pid), (2, rescuer.pid)]
    first, second = await runs_of(store)
    assert (first.status, first.attempt) == (RunStatus.interrupted, 1)
    assert first.error == interrupted_error(node_of(victim))
    assert (second.status, second.attempt) == (RunStatus.succeeded, 2)
    assert second.node_id == node_of(rescuer) and second.lease_expires_at is None
    assert first.scheduled_for == second.scheduled_for
    assert first.queue_job_id == second.queue_job_id == KEY


# -- the runner's policy on a virtual clock (real SQLite file) ----------------------------
class Calls:
    """A handler for the in-process tests: counts its starts; blocks until released."""

    def __init__(self, *, block: bool = False) -> None:
        self.attempts: list[int] = []
        self.cancelled = False
        self.release = asyncio.Event()
        if not block:
            self.release.set()

    async def __call__(self, ctx: Any) -> str:
        self.attempts.append(ctx.attempt)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "ok"


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[tuple[Store, VirtualClock]]:
    store = open_store(f"sqlite:///{tmp_path}/scheduler.db")
    await store.open()
    try:
        yield store, VirtualClock(T0 + timedelta(seconds=60))
    finally:
        await store.close()


def scheduled_job(handler: Calls, **options: Any) -> ScheduledJob:
    return build_job("job", trigger=Interval(seconds=10), handler=handler, queue="agent", **options)


def claim(run_id: str, attempt: int, attempts: int) -> Job:
    """The queue job of the fire as a worker claims it (`attempt` counts the claims)."""
    return Job(
        id=KEY,
        name="job",
        data={"job_id": "job", "scheduled_for": FIRE.isoformat(), "payload": {"run_id": run_id}},
        attempt=attempt,
        attempts=attempts,
        backoff=Backoff("custom") if attempts > 1 else None,
    )


async def dead_attempt(store: Store, clock: VirtualClock) -> RunRecord:
    """The `running` record of attempt 1 left by worker ``w1`` when it died."""
    run = RunRecord(
        run_id=new_run_id(),
        job_id="job",
        scheduled_for=FIRE,
        status=RunStatus.running,
        attempt=1,
        started_at=clock.now() - timedelta(seconds=5),
        node_id="w1",
        lease_expires_at=clock.now() + timedelta(seconds=25),
        queue_job_id=KEY,
    )
    assert await store.record_run(run)
    return run


async def test_the_running_record_holds_a_lease_the_runner_renews_while_the_attempt_runs(
    local: tuple[Store, VirtualClock],
) -> None:
    store, clock = local
    handler = Calls(block=True)
    run_id = new_run_id()
    await store.record_run(
        RunRecord(
            run_id=run_id, job_id="job", scheduled_for=FIRE, status=RunStatus.scheduled,
            queue_job_id=KEY,
        )
    )  # fmt: skip
    runner = ScheduledJobRunner(
        store, clock=clock, node_id="w2", jobs=lambda _: scheduled_job(handler)
    )
    task = asyncio.create_task(runner(claim(run_id, 1, 1)))
    try:

        async def started() -> bool:
            return handler.attempts == [1]

        await wait_for(started, "the attempt to start")
        for _ in range(6):  # a minute: twice the lease, renewed every lease_s / 3
            await clock.advance(runner.lease_s / 3)
            until = clock.now() + timedelta(seconds=runner.lease_s)

            async def renewed(until: Any = until) -> bool:
                stored = await store.get_run(run_id)
                assert stored is not None and stored.status == RunStatus.running
                # (renewed, and the renewal asleep on the clock again before it moves on)
                return stored.lease_expires_at == until and clock.sleepers == 1

            await wait_for(renewed, "the lease to be renewed")
        assert await store.interrupt_expired(clock.now()) == []  # alive: never swept
        handler.release.set()
        assert await task == {"run_id": run_id, "status": "succeeded"}
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    (run,) = await runs_of(store)
    assert run.status == RunStatus.succeeded and run.lease_expires_at is None


async def test_an_attempt_whose_run_was_swept_interrupted_is_cancelled_and_not_recorded(
    local: tuple[Store, VirtualClock],
) -> None:
    store, clock = local
    handler = Calls(block=True)
    run_id = new_run_id()
    await store.record_run(
        RunRecord(run_id=run_id, job_id="job", scheduled_for=FIRE, status=RunStatus.scheduled)
    )
    runner = ScheduledJobRunner(
        store, clock=clock, node_id="w2", jobs=lambda _: scheduled_job(handler)
    )
    task = asyncio.create_task(runner(claim(run_id, 1, 1)))
    try:

        async def started() -> bool:
            return handler.attempts == [1]

        await wait_for(started, "the attempt to start")
        # A sweep that found the lease expired (this worker could not reach the store, say):
        (swept,) = await store.interrupt_expired(clock.now() + timedelta(hours=1))
        assert swept.run_id == run_id
        await clock.advance(30)

        async def ended() -> bool:
            return task.done()

        await wait_for(ended, "the attempt to stop", timeout_s=5)
        with pytest.raises(Exception, match="taken over"):
            await task
        assert handler.cancelled
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    (run,) = await runs_of(store)
    assert run.status == RunStatus.interrupted  # the sweep's verdict stands


async def test_a_claim_past_the_policys_attempts_does_not_run_and_the_run_ends_interrupted(
    local: tuple[Store, VirtualClock],
) -> None:
    store, clock = local
    handler = Calls()
    dead = await dead_attempt(store, clock)
    runner = ScheduledJobRunner(
        store, clock=clock, node_id="w2", jobs=lambda _: scheduled_job(handler)
    )
    # The queue's stalled recovery hands attempt 2 over although the job has one attempt.
    with pytest.raises(UnrecoverableError, match="allows no attempt 2"):
        await runner(claim(dead.run_id, 2, 1))
    assert handler.attempts == []
    (run,) = await runs_of(store)
    assert run.status == RunStatus.interrupted and run.attempt == 1
    assert run.error == interrupted_error("w1") and run.fence == dead.fence + 1


async def test_a_policy_that_does_not_retry_interruptions_is_obeyed(
    local: tuple[Store, VirtualClock],
) -> None:
    store, clock = local
    handler = Calls()
    dead = await dead_attempt(store, clock)
    job = scheduled_job(handler, retry={"max_attempts": 3, "no_retry_on": ["RunInterruptedError"]})
    runner = ScheduledJobRunner(store, clock=clock, node_id="w2", jobs=lambda _: job)
    with pytest.raises(UnrecoverableError):
        await runner(claim(dead.run_id, 2, 3))
    assert handler.attempts == []
    (run,) = await runs_of(store)
    assert run.status == RunStatus.interrupted and run.attempt == 1


async def test_the_retry_of_an_interrupted_attempt_waits_the_policys_delay(
    local: tuple[Store, VirtualClock],
) -> None:
    store, clock = local
    handler = Calls()
    dead = await dead_attempt(store, clock)
    job = scheduled_job(handler, retry={"max_attempts": 3, "strategy": "fixed", "base_delay": 5.0})
    runner = ScheduledJobRunner(store, clock=clock, node_id="w2", jobs=lambda _: job)
    task = asyncio.create_task(runner(claim(dead.run_id, 2, 3)))
    try:

        async def waiting() -> bool:
            rows = await runs_of(store)
            return len(rows) == 2 and clock.sleepers >= 2  # the delay and the lease renewal

        await wait_for(waiting, "the retry to be recorded and to wait")
        first, second = await runs_of(store)
        assert (first.status, first.attempt) == (RunStatus.interrupted, 1)
        assert (second.status, second.attempt) == (RunStatus.running, 2)
        assert second.error is not None and second.error.startswith("retrying after")
        assert second.lease_expires_at is not None
        await clock.advance(4.9)
        assert handler.attempts == [] and not task.done()
        await clock.advance(0.2)
        result = await asyncio.wait_for(task, 10)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    assert handler.attempts == [2]
    assert result["status"] == "succeeded" and result["run_id"] == second.run_id
    first, second = await runs_of(store)
    assert (second.status, second.error, second.node_id) == (RunStatus.succeeded, None, "w2")


async def test_a_fire_whose_run_already_succeeded_is_not_run_again(
    local: tuple[Store, VirtualClock],
) -> None:
    store, clock = local
    handler = Calls()
    dead = await dead_attempt(store, clock)
    # Its worker recorded the success, then died before the queue heard of it.
    await store.record_run(dead.evolve(status=RunStatus.succeeded, finished_at=clock.now(),
                                       lease_expires_at=None))  # fmt: skip
    runner = ScheduledJobRunner(
        store, clock=clock, node_id="w2", jobs=lambda _: scheduled_job(handler)
    )
    assert await runner(claim(dead.run_id, 2, 1)) == {
        "run_id": dead.run_id,
        "status": "succeeded",
    }
    assert handler.attempts == []
    (run,) = await runs_of(store)
    assert run.status == RunStatus.succeeded and run.node_id == "w1"


async def test_a_dead_lettered_fire_retried_by_hand_runs_again(
    local: tuple[Store, VirtualClock],
) -> None:
    store, clock = local
    handler = Calls()
    dead = await dead_attempt(store, clock)
    (swept,) = await store.interrupt_expired(clock.now() + timedelta(hours=1))
    runner = ScheduledJobRunner(
        store, clock=clock, node_id="w2", jobs=lambda _: scheduled_job(handler)
    )
    # `agentcron queue retry` resets the queue job's attempts: a new chain, attempt 1.
    result = await runner(claim(dead.run_id, 1, 1))
    assert handler.attempts == [1] and result["status"] == "succeeded"
    first, second = sorted(await runs_of(store), key=lambda r: r.status != RunStatus.interrupted)
    assert first.run_id == swept.run_id and first.status == RunStatus.interrupted
    assert second.status == RunStatus.succeeded and second.run_id == result["run_id"]
