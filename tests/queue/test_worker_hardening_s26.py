"""The worker after a QA pass: a burst worker recovers stalled jobs, an outage longer than the
lease re-runs nothing, a stop has a grace and can be forced, side-loop failures are logged
readably and once, bad settings are refused, and the CLI refuses a missing or corrupt
database in one line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from queue_testlib import T0
from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.queue import Job, Queue, QueueInputError, Worker, open_queue
from agentcron.queue.worker import CANCEL_WAIT_S, STOPPED_ERROR
from agentcron.testing import VirtualClock

HERE = Path(__file__).resolve().parent
#: Real waits on other processes are bounded; they poll every `_POLL_S`.
_POLL_S = 0.05


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def sqlite_queue(tmp_path: Path, clock: VirtualClock) -> Queue:
    return open_queue(f"sqlite:///{tmp_path}/q.db", "jobs", clock=clock)


async def advance_until(clock: VirtualClock, done: Callable[[], bool], max_s: float) -> None:
    """Let virtual time pass in small steps until `done()`, at most `max_s` seconds."""
    for _ in range(int(max_s / 0.05)):
        if done():
            return
        await clock.advance(0.05)
    assert done(), f"not done after {max_s} virtual seconds"


async def state(q: Queue, job_id: str) -> str:
    info = await q.get(job_id)
    assert info is not None
    return info.state


class FlakyBackend:
    """A real SQLite queue whose calls fail while `down` (a full disk); `extend` may be
    kept working with `extend_works`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False
        self.extend_works = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _check(self) -> None:
        if self.down:
            raise sqlite3.OperationalError("database or disk is full")

    async def exchange(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return await self.inner.exchange(*args, **kwargs)

    async def extend(self, *args: Any, **kwargs: Any) -> Any:
        if not self.extend_works:
            self._check()
        return await self.inner.extend(*args, **kwargs)

    async def recover_stalled(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return await self.inner.recover_stalled(*args, **kwargs)

    async def has_work(self) -> bool:
        self._check()
        return bool(await self.inner.has_work())

    async def tick_repeatables(self) -> Any:
        self._check()
        return await self.inner.tick_repeatables()


async def claim_as_a_dead_worker(q: Queue, lease_s: float) -> None:
    """Claim the next job as a worker that then dies (nobody renews or records it)."""
    backend: Any = q
    jobs, _ = await backend.exchange([], 1, token="dead:1", lease_s=lease_s, rate=None)
    assert len(jobs) == 1


# -- 1. a burst worker recovers stalled jobs ---------------------------------------------------
async def test_a_burst_worker_runs_a_job_whose_worker_died_once_its_lease_expired(
    tmp_path: Path,
) -> None:
    # QA: the job stayed active and the burst worker printed "stopped after 0 job(s)".
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("send", {})
    await claim_as_a_dead_worker(q, lease_s=3)
    await clock.advance(4)
    ran: list[int] = []

    async def handler(job: Job) -> str:
        ran.append(job.attempt)
        return "rescued"

    task = asyncio.create_task(q.worker(handler).run(burst=True))
    await advance_until(clock, task.done, 10)
    await task
    assert ran == [2]  # the dead worker's attempt counts
    assert await state(q, job_id) == "completed"
    await q.close()


async def test_a_burst_worker_leaves_a_job_whose_lease_is_still_live(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("send", {})
    await claim_as_a_dead_worker(q, lease_s=30)

    async def handler(job: Job) -> None:
        raise AssertionError("a job under a live lease must not run twice")

    task = asyncio.create_task(q.worker(handler).run(burst=True))
    await advance_until(clock, task.done, 10)
    await task
    assert await state(q, job_id) == "active"
    await q.close()


@pytest.mark.slow
def test_agentcron_worker_burst_finishes_the_job_of_a_sigkilled_worker(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    assert cli("queue", "add", "emails", "queue_handlers:hang_first", "--store", store)[0] == 0
    log = tmp_path / "runs.log"
    env = os.environ | {
        "QUEUE_TEST_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
    }
    base = [sys.executable, "-m", "agentcron", "worker", "--queue", "emails", "--store", store]
    victim = subprocess.Popen([*base, "--lease", "0.5"], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: log.exists() and log.read_text().count("\n") == 1, "the first run")
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    db = tmp_path / "q.db"
    wait_until(lambda: lease_expired(db), "the dead worker's lease to expire")
    result = subprocess.run(
        [*base, "--burst"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "stopped after 1 job(s)" in result.stderr
    status = json.loads(cli("queue", "status", "emails", "--store", store, "--json")[1])
    assert status["counts"]["completed"] == 1


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll `predicate()` (other processes, real time) until true, at most `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(_POLL_S)  # polling another process, bounded (noqa: sleep-ok)


def lease_expired(db: Path) -> bool:
    conn = sqlite3.connect(db, timeout=5)
    try:
        (until_ms,) = conn.execute("SELECT at_ms FROM queue_jobs WHERE state='active'").fetchone()
    finally:
        conn.close()
    return bool(time.time() * 1000 > until_ms)


# -- 2. an outage longer than the lease re-runs nothing ---------------------------------------
async def test_a_job_finished_during_an_outage_longer_than_the_lease_runs_once(
    tmp_path: Path,
) -> None:
    # QA: disk full for 8 s with a 3 s lease: the worker's own stalled check took back the
    # job it had finished (the lease was not renewed), and the job ran again.
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("send", {})
    backend = FlakyBackend(q)
    ran: list[int] = []

    async def handler(job: Job) -> str:
        ran.append(job.attempt)
        backend.down = True  # the disk fills up before the outcome is recorded
        return "sent"

    worker = Worker(backend, handler, lease_s=3, stalled_interval_s=1)
    task = asyncio.create_task(worker.run())
    await advance_until(clock, lambda: bool(ran), 5)
    await clock.advance(8)
    backend.down = False
    await advance_until(clock, lambda: worker.processed == 1 and not worker._finished, 20)
    await clock.advance(10)
    await worker.close()
    await task
    assert ran == [1]
    assert await state(q, job_id) == "completed"
    await q.close()


async def test_leases_of_finished_jobs_are_renewed_until_their_outcome_is_recorded(
    tmp_path: Path,
) -> None:
    # Recording fails for longer than the lease while renewing works: another worker's
    # stalled check must not take the finished job (before, only running jobs were renewed).
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("send", {})
    backend = FlakyBackend(q)
    backend.extend_works = True
    ran: list[int] = []

    async def handler(job: Job) -> str:
        ran.append(job.attempt)
        backend.down = True
        return "sent"

    worker = Worker(backend, handler, lease_s=3, stalled_interval_s=1)
    task = asyncio.create_task(worker.run())
    await advance_until(clock, lambda: bool(ran), 5)
    other: Any = q
    for _ in range(8):
        await clock.advance(1)
        await other.recover_stalled(1, 1.0)  # another worker's stalled check
    assert await state(q, job_id) == "active"
    backend.down = False
    await advance_until(clock, lambda: not worker._finished, 20)
    await worker.close()
    await task
    assert ran == [1]
    assert await state(q, job_id) == "completed"
    await q.close()


# -- 3. stopping: a grace, then cancelling -----------------------------------------------------
async def test_close_cancels_an_async_handler_after_the_grace_and_puts_its_job_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("slow", {}, attempts=1)
    started = asyncio.Event()
    cancelled: list[str] = []

    async def handler(job: Job) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(job.id)
            raise

    worker = q.worker(handler, grace_s=5)
    task = asyncio.create_task(worker.run())
    await advance_until(clock, started.is_set, 5)
    caplog.set_level(logging.WARNING, logger="agentcron.queue")
    closing = asyncio.create_task(worker.close())
    await clock.advance(4.9)
    assert not closing.done() and cancelled == []  # still within the grace
    await advance_until(clock, closing.done, 1)
    await closing
    await task
    assert cancelled == [job_id]
    info = await q.get(job_id)
    assert info is not None and (info.state, info.error) == ("waiting", STOPPED_ERROR)
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[0] == (
        "queue jobs: stopping: no new jobs; 1 running job(s): waiting up to 5s for them to"
        " finish, then cancelling them"
    )
    assert "cancelling 1 running job(s) after the grace of 5s" in warnings[1]
    assert worker.processed == 0

    # Its last attempt was cut short, not failed: it runs again.
    async def finish(job: Job) -> str:
        return f"attempt {job.attempt}"

    drained = asyncio.create_task(q.worker(finish).run(burst=True))
    await advance_until(clock, drained.done, 5)
    await drained
    info = await q.get(job_id)
    assert info is not None and (info.state, info.result) == ("completed", "attempt 2")
    await q.close()


async def test_a_second_close_with_force_cancels_at_once(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("slow", {})
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await asyncio.Event().wait()

    worker = q.worker(handler, grace_s=None)  # no limit: only a forced close stops it
    task = asyncio.create_task(worker.run())
    await advance_until(clock, started.is_set, 5)
    graceful = asyncio.create_task(worker.close())
    await clock.advance(3600)
    assert not graceful.done()
    await asyncio.wait_for(worker.close(force=True), 10)  # no virtual time passes
    await graceful
    await task
    assert await state(q, job_id) == "waiting"
    await q.close()


async def test_a_forced_stop_leaves_a_sync_handlers_job_to_stalled_recovery(
    tmp_path: Path,
) -> None:
    # A thread cannot be stopped: releasing its job would let another worker run it beside
    # the thread. Its lease is no longer renewed, and stalled recovery brings it back.
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("sync", {})
    started = threading.Event()
    release = threading.Event()

    def handler(job: Job) -> None:
        started.set()
        release.wait(60)

    worker = q.worker(handler, lease_s=2)
    task = asyncio.create_task(worker.run())
    try:
        await advance_until(clock, started.is_set, 5)
        await asyncio.wait_for(worker.close(force=True), 10)
        await task
        assert await state(q, job_id) == "active"
        await clock.advance(3)
        other: Any = q
        await other.recover_stalled(1, 1.0)
        assert await state(q, job_id) == "waiting"
    finally:
        release.set()
    await q.close()


async def test_a_handler_that_ignores_cancellation_is_left_behind(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("stubborn", {})
    started = asyncio.Event()
    release = asyncio.Event()

    async def handler(job: Job) -> str:
        started.set()
        while not release.is_set():
            with SuppressCancel():
                await release.wait()
        return "too late"

    worker = q.worker(handler)
    task = asyncio.create_task(worker.run())
    await advance_until(clock, started.is_set, 5)
    closing = asyncio.create_task(worker.close(force=True))
    await advance_until(clock, closing.done, CANCEL_WAIT_S + 1)
    await task
    assert await state(q, job_id) == "active"  # left to stalled recovery
    release.set()
    await asyncio.sleep(0)  # the stubborn handler returns; nothing is recorded
    assert await state(q, job_id) == "active"
    await q.close()


class SuppressCancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, *rest: object) -> bool:
        return kind is asyncio.CancelledError


def worker_process(store: str, log: Path, err: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "QUEUE_TEST_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
    }
    argv = [sys.executable, "-m", "agentcron", "worker", "--queue", "emails", "--store", store]
    with err.open("wb") as stderr:
        return subprocess.Popen([*argv, *extra], env=env, stderr=stderr)


@pytest.mark.slow
def test_sigterm_waits_for_the_running_job_and_a_second_sigterm_stops_it(tmp_path: Path) -> None:
    # QA: a worker whose handler ran long could not be stopped, and said nothing.
    store = f"sqlite:///{tmp_path}/q.db"
    assert cli("queue", "add", "emails", "queue_handlers:hang_first", "--store", store)[0] == 0
    log, err = tmp_path / "runs.log", tmp_path / "err.txt"
    proc = worker_process(store, log, err, "--grace", "3600")
    try:
        wait_until(lambda: log.exists() and log.read_text().count("\n") == 1, "the job to start")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping" in err.read_text(), "the worker to say it stops")
        assert proc.poll() is None  # within the grace, the job still runs
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    text = err.read_text()
    assert code == 0, text
    assert "1 running job(s): waiting up to 3600s for them to finish" in text
    assert "cancelling 1 running job(s)" in text and "stopped after 0 job(s)" in text
    status = json.loads(cli("queue", "status", "emails", "--store", store, "--json")[1])
    assert status["counts"]["waiting"] == 1 and status["counts"]["completed"] == 0


@pytest.mark.slow
def test_the_grace_ends_a_stop_and_the_job_runs_again_later(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    assert cli("queue", "add", "emails", "queue_handlers:hang_first", "--store", store)[0] == 0
    log, err = tmp_path / "runs.log", tmp_path / "err.txt"
    proc = worker_process(store, log, err, "--grace", "0")
    try:
        wait_until(lambda: log.exists() and log.read_text().count("\n") == 1, "the job to start")
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert code == 0, err.read_text()
    again = worker_process(store, log, err, "--burst")
    assert again.wait(60) == 0, err.read_text()
    assert [line.split()[2] for line in log.read_text().splitlines()] == ["1", "2"]


# -- 4. side-loop failures are logged readably, once per outage -------------------------------
async def test_side_loop_failures_are_named_and_logged_when_they_begin_and_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    await q.add("slow", {})
    backend = FlakyBackend(q)
    release = asyncio.Event()
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await release.wait()

    worker = Worker(backend, handler, lease_s=2, stalled_interval_s=1)
    task = asyncio.create_task(worker.run())
    await advance_until(clock, started.is_set, 5)
    caplog.set_level(logging.WARNING, logger="agentcron.queue")
    backend.down = True
    await clock.advance(1.5)
    for _ in range(20):
        await clock.advance(0.5)  # ten stalled checks and renewals fail
    backend.down = False
    await clock.advance(2)
    release.set()
    await worker.close()
    await task
    await q.close()
    warnings = [r.getMessage() for r in caplog.records if "stopping" not in r.getMessage()]
    assert not any("bound method" in w for w in warnings), warnings
    for what in ("renewing leases", "stalled check"):
        assert [w for w in warnings if w.startswith(f"queue jobs: {what}")] == [
            f"queue jobs: {what} failed, retrying until it works: database or disk is full",
            *[w for w in warnings if w.startswith(f"queue jobs: {what} works again after")],
        ]
        assert sum(w.startswith(f"queue jobs: {what} works again after") for w in warnings) == 1


# -- 5. bad settings are refused ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_stalled", -1),
        ("max_stalled", "x"),
        ("max_stalled", 1.5),
        ("max_stalled", True),
        ("backoff_strategy", 5),
        ("rate_limit", (1,)),
        ("rate_limit", 5),
        ("rate_limit", (1, 2, 3)),
        ("grace_s", -1),
        ("grace_s", float("inf")),
        ("lease_s", 0),
        ("poll_s", "fast"),
    ],
)
async def test_a_bad_worker_setting_is_refused_naming_it(
    tmp_path: Path, option: str, value: Any
) -> None:
    q = sqlite_queue(tmp_path, VirtualClock(T0))

    async def handler(job: Job) -> None:
        return None

    with pytest.raises(QueueInputError, match=option) as raised:
        q.worker(handler, **{option: value})
    assert isinstance(raised.value, ValueError) and "\n" not in str(raised.value)
    await q.close()


async def test_max_stalled_zero_fails_a_job_at_its_first_stall(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    job_id = await q.add("send", {})
    await claim_as_a_dead_worker(q, lease_s=1)
    await clock.advance(2)

    async def handler(job: Job) -> None:
        raise AssertionError("it stalled once too often")

    task = asyncio.create_task(q.worker(handler, max_stalled=0).run(burst=True))
    await advance_until(clock, task.done, 5)
    await task
    assert await state(q, job_id) == "failed"
    await q.close()


def test_a_non_callable_handler_is_refused(tmp_path: Path) -> None:
    q = sqlite_queue(tmp_path, VirtualClock(T0))
    with pytest.raises(QueueInputError, match="handler must be callable"):
        q.worker("not a function")  # type: ignore[arg-type]


# -- 6, 7. the CLI on a missing or corrupt database --------------------------------------------
@pytest.mark.parametrize("where", ["data-dir", "store"])
def test_a_burst_worker_on_a_missing_database_exits_2_and_creates_nothing(
    tmp_path: Path, where: str
) -> None:
    missing = tmp_path / "typo"
    target = (
        ["--data-dir", str(missing)]
        if where == "data-dir"
        else ["--store", f"sqlite:///{missing}/x.db"]
    )
    code, out, err = cli("worker", "--queue", "emails", "--burst", *target)
    assert code == 2, (out, err)
    assert err.startswith(f"agentcron: no database at {missing}") and err.count("\n") == 1
    assert not missing.exists()


@pytest.mark.slow
def test_a_long_running_worker_creates_a_missing_database_and_says_so(tmp_path: Path) -> None:
    db, err, log = tmp_path / "new" / "q.db", tmp_path / "err.txt", tmp_path / "runs.log"
    store = f"sqlite:///{db}"
    proc = worker_process(store, log, err)
    try:
        wait_until(lambda: "created it" in err.read_text(), "the worker to create the database")
        assert cli("queue", "add", "emails", "queue_handlers:record", "--store", store)[0] == 0
        wait_until(log.exists, "the worker to run the job")  # so it handles signals now
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, err.read_text()
    assert err.read_text().startswith(f"agentcron: no database at {db}: created it;")
    assert cli("db", "check", "--store", f"sqlite:///{db}")[0] == 0


def test_a_worker_on_a_corrupt_database_exits_2_with_one_line(tmp_path: Path) -> None:
    # QA: `sqlite3.DatabaseError: database disk image is malformed` with a traceback.
    store = f"sqlite:///{tmp_path}/q.db"
    assert cli("queue", "add", "emails", "send", "--store", store)[0] == 0
    db = tmp_path / "q.db"
    conn = sqlite3.connect(db)
    (page,) = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name='queue_jobs_next'"
    ).fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    data = bytearray(db.read_bytes())
    data[(page - 1) * size : page * size] = b"\xff" * size
    db.write_bytes(bytes(data))
    code, out, err = cli("worker", "--queue", "emails", "--burst", "--store", store)
    assert code == 2, (out, err)
    assert err.startswith("agentcron: ") and err.count("\n") == 1, err
    assert "malformed" in err


class SwallowingBackend(FlakyBackend):
    """A backend whose `has_work` swallows its caller's cancellation, as a client library's
    cleanup can (seen with redis-py: a cancelled `Worker.run()` never ended)."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.asked = asyncio.Event()

    async def has_work(self) -> bool:
        if self.asked.is_set():
            return False
        self.asked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # swallowed, not re-raised
        return True


async def test_a_cancelled_burst_worker_ends_though_its_backend_swallowed_the_cancel(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(T0)
    q = sqlite_queue(tmp_path, clock)
    await q.add("later", {}, delay=3600)  # keeps the burst worker waiting
    backend = SwallowingBackend(q)

    async def handler(job: Job) -> None:
        return None

    task = asyncio.create_task(Worker(backend, handler).run(burst=True))
    await asyncio.wait_for(backend.asked.wait(), 10)
    task.cancel()
    for _ in range(100):  # the worker's idle waits pass; it stops at its next turn
        if task.done():
            break
        await clock.advance(0.5)
    assert task.done() and task.cancelled()
    await q.close()
