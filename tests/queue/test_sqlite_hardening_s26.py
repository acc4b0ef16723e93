"""The SQLite queue after a QA pass: a corrupt, foreign, locked, full or unreachable file is
one line saying what to do; the CLI refuses bytes that are not UTF-8; URL options are the
store's; a worker follows a database file that was deleted or replaced.

What holds for every backend (text that is not UTF-8 and over-long names are bad input, ids
match exactly, `retry_failed` starts jobs afresh, `clean` refuses bad arguments) moved to
the contract suite, test_queue_contract.py, which runs it on Redis too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_testlib import T0
from typer.testing import CliRunner

from agentcron.cli.main import build_app
from agentcron.queue import BulkJob, QueueError, QueueInputError, open_queue
from agentcron.queue.sqlite import SqliteQueue
from agentcron.testing import VirtualClock

HERE = Path(__file__).resolve().parent
#: Real waits on other processes are bounded; they poll every `_POLL_S`.
_POLL_S = 0.05


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.startswith("agentcron: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def queue_at(path: Path) -> SqliteQueue:
    return SqliteQueue(path, "jobs", clock=VirtualClock(T0))


def new_database(tmp_path: Path) -> str:
    """A complete agentcron database (as `agentcron queue add` makes it); its store URL."""
    store = f"sqlite:///{tmp_path}/data/scheduler.db"
    assert cli("db", "migrate", "--store", store)[0] == 0
    return store


@contextlib.contextmanager
def write_lock_held(path: Path) -> Iterator[None]:
    """Another process holding `path`'s write lock (a transaction left open)."""
    code = (
        "import sqlite3, sys\n"
        f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.wait(30)
        proc.stdout.close()


# -- 1. a corrupt file ------------------------------------------------------------------------
def corrupt_the_middle(path: Path) -> None:
    """Overwrite two pages in the middle of `path` (neither the header nor the schema)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        (size,) = conn.execute("PRAGMA page_size").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
    data = bytearray(path.read_bytes())
    start = (pages // 2) * size
    data[start : start + 2 * size] = b"\xff" * (2 * size)
    path.write_bytes(bytes(data))


async def filled(path: Path) -> None:
    q = queue_at(path)
    await q.add_bulk([BulkJob(f"job-{i}", {"pad": "x" * 200}) for i in range(1500)])
    await q.close()


async def test_a_corrupt_file_is_one_queue_error_saying_to_restore_a_backup(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scheduler.db"
    await filled(path)
    corrupt_the_middle(path)
    q = queue_at(path)
    try:
        with pytest.raises(QueueError) as caught:
            await q.counts()
            await q.check_integrity()
    finally:
        await q.close()
    message = str(caught.value)
    assert "corrupt" in message and "agentcron db restore FILE" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "command",
    [
        ("status",),
        ("add", "another"),
        ("pause",),
        ("resume",),
        ("clean", "--state", "failed"),
        ("retry-failed",),
    ],
)
def test_every_queue_command_refuses_a_corrupt_file_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    store = new_database(tmp_path)
    path = tmp_path / "data" / "scheduler.db"
    asyncio.run(filled(path))
    corrupt_the_middle(path)
    code, _, err = cli("queue", command[0], "jobs", *command[1:], "--store", store)
    one_line(code, err, "corrupt", "agentcron db restore FILE")


# -- 2. text that is not UTF-8 on the command line (the Queue's checks: contract suite) --
def test_cli_add_of_bytes_that_are_not_utf8_exits_2_naming_the_field(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/q.db"
    base: list[str | bytes] = [sys.executable, "-m", "agentcron", "queue", "add"]
    base += ["--store", store, "q"]
    cases: list[tuple[list[str | bytes], str]] = [
        ([*base, b"\xff"], "job name"),
        ([*base, "n", "--job-id", b"\xff"], "job_id"),
    ]
    for argv, field in cases:
        proc = subprocess.run(argv, capture_output=True, timeout=60)
        err = proc.stderr.decode("utf-8", "replace")
        one_line(proc.returncode, err, f"{field} must be valid UTF-8")
    assert not (tmp_path / "q.db").exists()  # refused before a database is made for it


# -- 3. a deleted or replaced file --------------------------------------------------------------
def _remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


async def test_a_worker_moves_to_the_file_that_replaced_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "scheduler.db"
    worker_side, producer = queue_at(path), queue_at(path)
    try:
        await worker_side.add("old")
        _remove_database(path)
        new_id = await producer.add("new")  # a new file at the path
        jobs, _ = await worker_side.exchange([], 5, token="t", lease_s=30, rate=None)
        assert [job.id for job in jobs] == [new_id] and [job.name for job in jobs] == ["new"]
        assert [p.name for p in os.scandir(tmp_path) if ".orphaned-" in p.name]  # old one kept
        assert sum("was replaced" in r.message for r in caplog.records) == 1
        await worker_side.exchange([], 5, token="t2", lease_s=30, rate=None)
        assert sum("was replaced" in r.message for r in caplog.records) == 1
    finally:
        await worker_side.close()
        await producer.close()


async def test_a_worker_writes_back_a_deleted_file(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.db"
    q = queue_at(path)
    try:
        job_id = await q.add("kept")
        _remove_database(path)
        jobs, _ = await q.exchange([], 5, token="t", lease_s=30, rate=None)
        assert [job.id for job in jobs] == [job_id]
    finally:
        await q.close()
    other = queue_at(path)
    try:
        info = await other.get(job_id)
        assert info is not None and info.state == "active"
    finally:
        await other.close()


@pytest.mark.slow
def test_a_running_worker_process_sees_a_job_added_after_rm(tmp_path: Path) -> None:
    store = new_database(tmp_path)
    path = tmp_path / "data" / "scheduler.db"
    log = tmp_path / "runs.log"
    env = os.environ | {
        "QUEUE_TEST_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path]),
    }
    argv = [sys.executable, "-m", "agentcron", "worker", "--queue", "jobs", "--store", store]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert cli("queue", "add", "jobs", "queue_handlers:record", "--store", store)[0] == 0
        _wait_until(lambda: log.exists(), "the worker to run the first job")
        _remove_database(path)
        code, out, err = cli("queue", "add", "jobs", "queue_handlers:record", "--store", store)
        assert code == 0, err
        _wait_until(lambda: len(log.read_text().splitlines()) == 2, "the worker to see the job")
    finally:
        proc.terminate()
        _, err_bytes = proc.communicate(timeout=60)
    # Written back or replaced, depending on whether the worker looked before the add: once.
    assert err_bytes.decode().count("while agentcron had it open") == 1


def _wait_until(done: object, what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():  # type: ignore[operator]
            return
        time.sleep(_POLL_S)  # waiting on another process (noqa: sleep-ok)
    raise AssertionError(f"timed out waiting for {what}")


# -- 4. a foreign file; reads without the write lock ------------------------------------------
def test_queue_commands_refuse_a_file_that_is_not_agentcron_s(tmp_path: Path) -> None:
    path = tmp_path / "data" / "scheduler.db"
    path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE mine (x)")
    for command in ("status", "pause"):
        code, _, err = cli("queue", command, "jobs", "--data-dir", str(path.parent))
        one_line(code, err, "is an SQLite database but not an agentcron database")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert names == ["mine"]


def test_status_reads_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    store = new_database(tmp_path)
    assert cli("queue", "add", "jobs", "x", "--store", store)[0] == 0
    with write_lock_held(tmp_path / "data" / "scheduler.db"):
        started = time.monotonic()
        code, out, err = cli("queue", "status", "jobs", "--store", store, "--json")
        assert code == 0, err
        assert '"waiting": 1' in out
        assert time.monotonic() - started < 4  # did not wait for the lock (5 s)


# -- 8. URL options are the store's -----------------------------------------------------------
@pytest.mark.parametrize(
    "query", ["busy_timeout_ms=", "busy_timeout_ms=-5", "busy_timeout_ms=100", "synchronous=OFF"]
)
def test_only_the_store_s_url_options_are_taken(tmp_path: Path, query: str) -> None:
    store = new_database(tmp_path)  # an existing database, as a new one
    with pytest.raises(QueueInputError, match=query.split("=")[0]):
        open_queue(f"{store}?{query}", "jobs")
    for url in (f"{store}?{query}", f"sqlite:///{tmp_path}/new/q.db?{query}"):
        code, _, err = cli("queue", "add", "jobs", "x", "--store", url)
        one_line(code, err, query.split("=")[0])


def test_a_negative_busy_timeout_is_refused_in_python(tmp_path: Path) -> None:
    with pytest.raises(QueueInputError, match="busy_timeout_ms"):
        SqliteQueue(tmp_path / "q.db", "jobs", busy_timeout_ms=-5)


# -- 9. what to do ----------------------------------------------------------------------------
async def test_a_locked_file_says_to_try_again(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    q = SqliteQueue(path, "jobs", clock=VirtualClock(T0), busy_timeout_ms=0)
    try:
        await q.counts()
        with write_lock_held(path):
            with pytest.raises(sqlite3.OperationalError) as caught:
                await q.pause()
    finally:
        await q.close()
    assert "database is locked" in str(caught.value)
    assert "try again when it is done, or stop that process" in str(caught.value)


def test_cli_on_a_locked_file_exits_2_saying_to_try_again(tmp_path: Path) -> None:
    store = new_database(tmp_path)
    assert cli("queue", "add", "jobs", "x", "--store", store)[0] == 0
    with write_lock_held(tmp_path / "data" / "scheduler.db"):
        code, _, err = cli("queue", "pause", "jobs", "--store", store)
    one_line(code, err, "database is locked", "try again")


async def test_a_full_disk_says_to_free_space(tmp_path: Path) -> None:
    q = queue_at(tmp_path / "q.db")
    try:
        await q.add("x")
        (pages,) = q.db.execute("PRAGMA page_count").fetchone()
        q.db.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(sqlite3.OperationalError, match="disk is full; free space"):
            await q.add("big", {"pad": "x" * 100_000})
    finally:
        await q.close()


async def test_a_file_that_cannot_be_made_says_what_to_check() -> None:
    q = SqliteQueue("/proc/agentcron-queue-test.db", "jobs")  # not writable, even by root
    try:
        with pytest.raises(QueueError, match="check that the path and its directory exist"):
            await q.counts()
    finally:
        await q.close()


def test_a_disk_io_error_says_to_check_the_disk(tmp_path: Path) -> None:
    q = queue_at(tmp_path / "q.db")
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = sqlite3.SQLITE_IOERR_WRITE
    described = q._error(error, "write")
    assert isinstance(described, sqlite3.OperationalError)  # a worker retries it
    assert "disk I/O error" in str(described) and "check the disk" in str(described)
