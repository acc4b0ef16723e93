"""`SqliteStore`: the `Store` contract on one SQLite file (`sqlite:///data/scheduler.db`).

How it keeps the contract of `agentcron.store.base`:

* **One writer.** Every write runs on one connection owned by one thread. The thread takes
  whatever writes are queued (up to `max_batch`), runs them in one `BEGIN IMMEDIATE`
  transaction and commits; each caller's `await` resolves only after that commit (one
  wake-up per batch). A multi-statement write runs inside a savepoint, so one failing write
  does not undo the others; consecutive idempotent statements of the same SQL (run records,
  lease renewals, heartbeats) go to SQLite with one `executemany`. Group commit is what makes
  thousands of durable writes per second possible, and the event loop never waits on disk.
* **Durability.** WAL with `synchronous=NORMAL`: a commit survives a crash of the process
  (SIGKILL included); the newest commits may be lost on power loss or an OS crash. Pass
  `synchronous="FULL"` to survive those too, at a cost.
* **Across processes.** `BEGIN IMMEDIATE` takes the file's write lock, so read-then-write
  operations (`claim_fire`, `interrupt_expired`, fencing) are atomic between processes too;
  `busy_timeout_s` is how long a write waits for another process's transaction.
* **Reads** run in `reader_threads` threads (each with its own connection) and see every
  write that was acknowledged before they started.
* Times are stored as integer microseconds since the epoch (UTC) and read back aware.
"""

from __future__ import annotations

import asyncio
import gc
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from agentcron.clock import Clock, SystemClock, utc
from agentcron.models import (
    AuditEntry,
    ConflictPolicy,
    NodeHeartbeat,
    RunQuery,
    RunRecord,
    RunStats,
    RunStatus,
    StoredJob,
)
from agentcron.store import migrations
from agentcron.store.base import JobConflictError, StoreError

__all__ = ["SqliteStore", "describe_sqlite_error"]

T = TypeVar("T")
Synchronous = Literal["NORMAL", "FULL"]
_SYNC_PRAGMA: dict[str, str] = {
    "NORMAL": "PRAGMA synchronous = NORMAL",
    "FULL": "PRAGMA synchronous = FULL",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
#: Statuses a run is usually first recorded with (see `record_run`).
_FIRST_STATUSES = frozenset({RunStatus.scheduled, RunStatus.running, RunStatus.skipped})
_FAILED_SQL = "('failed', 'timed_out', 'interrupted')"
_ACTIVE_SQL = "('scheduled', 'running')"
_RUN_COLUMNS = (
    "run_id, job_id, scheduled_for_us, status, attempt, started_us, finished_us, error, "
    "output_tail, node_id, skip_reason, lease_expires_us, fence, queue_job_id"
)
_JOB_COLUMNS = (
    "id, definition, paused, pause_note, next_run_us, last_fire_us, created_us, updated_us, version"
)
_HEARTBEAT_COLUMNS = (
    "node_id, sequence, sent_us, status, host, pid, version, platform, started_us, "
    "interval_s, details"
)


# -- conversions -----------------------------------------------------------------------------
def to_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch (UTC) of an aware datetime (naive: ValueError)."""
    if dt.tzinfo is not UTC:
        dt = utc(dt)
    return (dt - _EPOCH) // _ONE_US


def _opt_us(dt: datetime | None) -> int | None:
    return None if dt is None else to_us(dt)


def from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def _req_dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads_opt(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _run_params(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id, run.job_id, to_us(run.scheduled_for), str(run.status), run.attempt,
        _opt_us(run.started_at), _opt_us(run.finished_at), run.error, run.output_tail,
        run.node_id, run.skip_reason, _opt_us(run.lease_expires_at), run.fence, run.queue_job_id,
    )  # fmt: skip


def _run_from_row(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=row[0], job_id=row[1], scheduled_for=_req_dt(row[2]), status=RunStatus(row[3]),
        attempt=row[4], started_at=from_us(row[5]), finished_at=from_us(row[6]), error=row[7],
        output_tail=row[8], node_id=row[9], skip_reason=row[10],
        lease_expires_at=from_us(row[11]), fence=row[12], queue_job_id=row[13],
    )  # fmt: skip


def _job_from_row(row: Sequence[Any], definition: dict[str, Any] | None = None) -> StoredJob:
    return StoredJob(
        id=row[0], definition=json.loads(row[1]) if definition is None else definition,
        paused=bool(row[2]), pause_note=row[3],
        next_run=from_us(row[4]), last_fire=from_us(row[5]), created_at=from_us(row[6]),
        updated_at=from_us(row[7]), version=row[8],
    )  # fmt: skip


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Defer cyclic garbage collection while building many objects that are all kept: the
    collector would scan the growing heap again and again (40 % of loading 100k jobs)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _heartbeat_from_row(row: Sequence[Any]) -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id=row[0], sequence=row[1], sent_at=_req_dt(row[2]), status=row[3], host=row[4],
        pid=row[5], version=row[6], platform=row[7], started_at=from_us(row[8]),
        interval_s=row[9], details=json.loads(row[10]),
    )  # fmt: skip


def _where(query: RunQuery) -> tuple[str, list[Any]]:
    # Only constant fragments are joined; every value is a placeholder.
    clauses: list[str] = []
    params: list[Any] = []
    if query.job_id is not None:
        clauses.append("job_id = ?")
        params.append(query.job_id)
    if query.statuses:
        clauses.append("status IN (" + ", ".join("?" for _ in query.statuses) + ")")
        params.extend(str(s) for s in query.statuses)
    if query.since is not None:
        clauses.append("scheduled_for_us >= ?")
        params.append(to_us(query.since))
    if query.until is not None:
        clauses.append("scheduled_for_us < ?")
        params.append(to_us(query.until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# -- errors ----------------------------------------------------------------------------------
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


def describe_sqlite_error(exc: sqlite3.Error, path: Path | str, action: str) -> StoreError:
    """Turn a driver error into a `StoreError` naming the file and what to do."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    what = f"{action} {path}"
    if code in (_BUSY, _LOCKED):
        hint = "it is locked by another process; stop the other agentcron or raise busy_timeout_s"
    elif code == _READONLY:
        hint = "the file is read-only; make the file and its directory writable for this user"
    elif code == _FULL:
        hint = "the disk is full; free space and retry (the last committed state is intact)"
    elif code in (_CORRUPT, _NOTADB):
        hint = "the file is corrupt; restore a backup with `agentcron db restore FILE`"
    elif code == _CANTOPEN:
        hint = "it cannot be opened; check that the path and its directory exist and are writable"
    elif code == _IOERR:
        hint = "a disk I/O error occurred (disk full or failing?); free space or check the disk"
    else:
        hint = "see the SQLite error above"
    return StoreError(f"cannot {what}: {exc}; {hint}")


# -- the writer thread -----------------------------------------------------------------------
@dataclass(slots=True)
class _Op:
    """One queued write: a function of the connection, or a statement (result: rowcount)."""

    fn: Callable[[sqlite3.Connection], Any] | None
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    #: `fn`'s effect is all or nothing by itself: no savepoint needed around it.
    single_statement: bool = True
    sql: str = ""
    params: Sequence[Any] = ()
    #: Run when `sql` changed no row (e.g. update in place, else upsert); result: its rowcount.
    fallback: tuple[str, Sequence[Any]] | None = None
    #: Running the statement again changes nothing more and reports the same rowcount, so
    #: consecutive ones may be sent with one `executemany`.
    idempotent: bool = False
    ok: bool = True
    value: Any = None


def _settle_all(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class _Writer(threading.Thread):
    """Owns the write connection; runs queued writes in group-committed transactions."""

    def __init__(self, conn: sqlite3.Connection, path: Path, max_batch: int) -> None:
        super().__init__(name=f"agentcron-sqlite-writer:{path.name}", daemon=True)
        self._conn = conn
        self._path = path
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()

    def submit(
        self, fn: Callable[[sqlite3.Connection], T], *, single_statement: bool
    ) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Op(fn, future, loop, single_statement))
        return future

    def submit_statement(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        fallback: tuple[str, Sequence[Any]] | None,
        idempotent: bool,
    ) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put(
            _Op(
                None, future, loop, sql=sql, params=params, fallback=fallback, idempotent=idempotent
            )
        )
        return future

    def stop(self) -> None:
        """Finish every queued write, then end the thread (call `join()` after)."""
        self._queue.put(None)

    def run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
            self._run_batch(batch)
            self._resolve(batch)
        self._conn.close()

    def _run_batch(self, batch: list[_Op]) -> None:
        """Run `batch` in one transaction, leaving each op's outcome in `ok`/`value`."""
        try:
            self._transaction(batch)
        except sqlite3.IntegrityError as exc:
            self._rollback()
            if len(batch) > 1:  # one bad row must not sink the writes queued with it
                for op in batch:
                    self._run_batch([op])
                return
            self._fail(batch, describe_sqlite_error(exc, self._path, "write to"))
        except sqlite3.Error as exc:
            self._rollback()
            self._fail(batch, describe_sqlite_error(exc, self._path, "write to"))
        except BaseException as exc:  # pragma: no cover - a bug; never leave callers hanging
            self._rollback()
            self._fail(batch, StoreError(f"cannot write to {self._path}: {exc!r}"))

    def _transaction(self, batch: list[_Op]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        start = 0
        while start < len(batch):
            op = batch[start]
            if op.fn is None:
                end = start + 1
                while (
                    op.idempotent
                    and end < len(batch)
                    and batch[end].idempotent
                    and batch[end].sql == op.sql
                ):
                    end += 1
                self._statements(batch[start:end])
                start = end
                continue
            start += 1
            op.ok = True
            if op.single_statement:
                op.value = op.fn(conn)  # a failed statement has no effect
                continue
            conn.execute("SAVEPOINT op")
            try:
                op.value = op.fn(conn)
            except sqlite3.Error:
                raise
            except Exception as exc:  # an application refusal (e.g. JobConflictError)
                conn.execute("ROLLBACK TO op")
                op.ok, op.value = False, exc
            conn.execute("RELEASE op")
        conn.execute("COMMIT")

    def _statements(self, group: list[_Op]) -> None:
        """Run statement ops of one SQL text; many at once when each is idempotent."""
        conn, sql = self._conn, group[0].sql
        for op in group:
            op.ok = True
        if len(group) > 1:
            rows = conn.executemany(sql, [op.params for op in group]).rowcount
            if rows == len(group):  # each changed exactly one row
                for op in group:
                    op.value = 1
                return
            # Some changed nothing: find out which by running each again (idempotent).
        for op in group:
            op.value = conn.execute(sql, op.params).rowcount
            if op.value == 0 and op.fallback is not None:
                op.value = conn.execute(*op.fallback).rowcount

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (e.g. after SQLITE_FULL)

    @staticmethod
    def _fail(batch: list[_Op], error: StoreError) -> None:
        for op in batch:
            op.ok, op.value = False, error

    @staticmethod
    def _resolve(batch: list[_Op]) -> None:
        # One wake-up per event loop and batch, not one per write.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for op in batch:
            by_loop.setdefault(op.loop, []).append((op.future, op.ok, op.value))
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, outcomes)
            except RuntimeError:
                pass  # the caller's event loop is closed: nobody is waiting any more


class _Readers:
    """A few reader threads, each with its own connection (made on first use), so one slow
    query (statistics over a long history) does not hold up the others."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], threads: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="agentcron-sqlite-read")
        self._connect = connect
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


# -- the store -------------------------------------------------------------------------------
class SqliteStore:
    """The `Store` contract on one SQLite file; see the module docstring for the design."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout_s: float = 10.0,
        clock: Clock | None = None,
        max_batch: int = 512,
        reader_threads: int = 2,
    ) -> None:
        if synchronous not in _SYNC_PRAGMA:
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        if busy_timeout_s < 0:
            raise ValueError(f"busy_timeout_s must be >= 0, not {busy_timeout_s!r}")
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.synchronous: Synchronous = synchronous
        self.busy_timeout_s = busy_timeout_s
        self.max_batch = max_batch
        self.reader_threads = max(1, reader_threads)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._writer: _Writer | None = None
        self._readers: _Readers | None = None
        self._open_lock: asyncio.Lock | None = None
        #: `(before, after)` schema versions of the last `open()`.
        self.migrated: tuple[int, int] | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqliteStore:
        """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db` (as SQLAlchemy),
        optionally with `?synchronous=FULL` (durable even through a power loss; slower)."""
        from urllib.parse import parse_qs

        scheme, sep, rest = url.partition("://")
        rest, _, query = rest.partition("?")
        if scheme != "sqlite" or not sep or not rest.startswith("/") or len(rest) < 2:
            raise ValueError(
                f"not an SQLite store URL: {url!r}; use sqlite:///relative/file.db or "
                "sqlite:////absolute/file.db"
            )
        params = parse_qs(query, keep_blank_values=True)
        unknown = sorted(set(params) - {"synchronous"})
        if unknown:
            raise ValueError(
                f"unknown option(s) {', '.join(unknown)} in store URL {url!r}; "
                "the only one is ?synchronous=NORMAL|FULL"
            )
        if "synchronous" in params:
            options.setdefault("synchronous", params["synchronous"][-1].upper())
        return cls(Path(rest[1:]), **options)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Create or migrate the schema and start the writer; raises `StoreError`."""
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._writer is not None:
                return
            write_conn = await asyncio.to_thread(self._open_sync)
            self._readers = _Readers(self._connect_reader, self.reader_threads)
            self._writer = _Writer(write_conn, self.path, self.max_batch)
            self._writer.start()

    async def close(self) -> None:
        writer, readers = self._writer, self._readers
        self._writer, self._readers = None, None
        if writer is not None:
            writer.stop()
            await asyncio.to_thread(writer.join)
        if readers is not None:
            await asyncio.to_thread(readers.close)

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA foreign_keys = ON")
        # 16 MiB of page cache per connection (SQLite's default is 2 MiB): the run indexes of a
        # busy history stay in memory; sorts for statistics stay off disk.
        conn.execute("PRAGMA cache_size = -16384")
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        conn = self._connect()
        conn.execute(_SYNC_PRAGMA[self.synchronous])
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _open_sync(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory of {self.path}: {exc}; choose a writable data "
                "directory"
            ) from exc
        migrations.check_sqlite_header(self.path)
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise describe_sqlite_error(exc, self.path, "open") from exc
        try:
            self._prepare_writer(conn)
            return conn
        except sqlite3.Error as exc:
            conn.close()
            raise describe_sqlite_error(exc, self.path, "open") from exc
        except BaseException:
            conn.close()
            raise

    def _prepare_writer(self, conn: sqlite3.Connection) -> None:
        # Identity is checked before the first write so a foreign or newer file is untouched.
        migrations.check_identity(migrations.read_identity(conn), str(self.path))
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(
                f"cannot open {self.path}: SQLite refused WAL mode (got {mode!r}); put the "
                "database on a local file system"
            )
        conn.execute(_SYNC_PRAGMA[self.synchronous])
        # Checkpoint (copy the WAL into the database, with fsyncs) every 4,000 pages instead of
        # SQLite's 1,000: a busy run log commits many small batches; about 10 % more writes/s.
        conn.execute("PRAGMA wal_autocheckpoint = 4000")
        conn.execute("BEGIN IMMEDIATE")
        try:
            self.migrated = migrations.apply_pending(conn, str(self.path))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], *, single_statement: bool = False
    ) -> T:
        """Run `fn(conn)` in the writer's next transaction; returns after the commit.

        `single_statement=True` (fn's effect is all or nothing without a savepoint, e.g. one
        SQL statement) skips the savepoint.
        """
        if self._writer is None:
            await self.open()
        assert self._writer is not None
        return await self._writer.submit(fn, single_statement=single_statement)

    async def _execute(
        self,
        sql: str,
        params: Sequence[Any],
        *,
        fallback: tuple[str, Sequence[Any]] | None = None,
        idempotent: bool = False,
    ) -> int:
        """One statement (or, if it changed nothing, `fallback`) in the writer's next
        transaction; its rowcount, after the commit. `idempotent` lets the writer batch it
        with the same statements queued beside it (see `_Op.idempotent`)."""
        if self._writer is None:
            await self.open()
        assert self._writer is not None
        return await self._writer.submit_statement(
            sql, params, fallback=fallback, idempotent=idempotent
        )

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            await self.open()
        assert self._readers is not None
        readers = self._readers

        def guarded() -> T:
            try:
                return fn(readers.connection())
            except sqlite3.Error as exc:
                raise describe_sqlite_error(exc, self.path, "read from") from exc

        return await asyncio.get_running_loop().run_in_executor(readers.pool, guarded)

    def _now_us(self) -> int:
        return to_us(self._clock.now())

    # -- jobs ------------------------------------------------------------------------------
    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        definition = json.loads(_dumps(job.definition))  # normalised as it will read back
        now_us = self._now_us()

        def op(conn: sqlite3.Connection) -> StoredJob:
            old = _select_job(conn, job.id)
            if old is None:
                created_us = _opt_us(job.created_at) or now_us
                conn.execute(
                    f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (job.id, _dumps(definition), int(job.paused), job.pause_note,
                     _opt_us(job.next_run), _opt_us(job.last_fire), created_us, now_us),
                )  # fmt: skip
                _audit(conn, job.id, "added", actor, now_us, None, definition)
                return _select_job(conn, job.id)  # type: ignore[return-value]
            if conflict == "keep":
                return old
            if conflict == "error":
                raise JobConflictError(f"a job with id {job.id!r} already exists")
            if old.definition == definition:
                return old
            conn.execute(
                "UPDATE jobs SET definition = ?, updated_us = ?, version = version + 1 "
                "WHERE id = ?",
                (_dumps(definition), now_us, job.id),
            )
            _audit(conn, job.id, "updated", actor, now_us, old.definition, definition)
            return _select_job(conn, job.id)  # type: ignore[return-value]

        return await self._write(op)

    async def get_job(self, job_id: str) -> StoredJob | None:
        return await self._read(lambda conn: _select_job(conn, job_id))

    async def list_jobs(self) -> list[StoredJob]:
        def op(conn: sqlite3.Connection) -> list[StoredJob]:
            rows = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id").fetchall()
            with _gc_paused():
                # One JSON document for all definitions parses about twice as fast as one
                # each, which is most of the start-up time with many jobs.
                definitions = json.loads("[" + ",".join(row[1] for row in rows) + "]")
                return [_job_from_row(row, d) for row, d in zip(rows, definitions, strict=True)]

        return await self._read(op)

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        now_us = self._now_us()

        def op(conn: sqlite3.Connection) -> bool:
            old = _select_job(conn, job_id)
            if old is None:
                return False
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            conn.execute("DELETE FROM runs WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM fire_claims WHERE job_id = ?", (job_id,))
            _audit(conn, job_id, "removed", actor, now_us, old.definition, None)
            return True

        return await self._write(op)

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        now_us = self._now_us()

        def op(conn: sqlite3.Connection) -> StoredJob | None:
            changed = conn.execute(
                "UPDATE jobs SET paused = ?, pause_note = ?, updated_us = ? WHERE id = ?",
                (int(paused), note if paused else None, now_us, job_id),
            ).rowcount
            if not changed:
                return None
            _audit(conn, job_id, "paused" if paused else "resumed", actor, now_us, None, None)
            return _select_job(conn, job_id)

        return await self._write(op)

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        params = (_opt_us(next_run), _opt_us(last_fire), job_id)
        sql = "UPDATE jobs SET next_run_us = ?, last_fire_us = ? WHERE id = ?"
        await self._execute(sql, params, idempotent=True)

    # -- claims ----------------------------------------------------------------------------
    async def claim_fire(
        self, job_id: str, scheduled_for: datetime, node_id: str, *, now: datetime
    ) -> bool:
        params = (job_id, to_us(scheduled_for), node_id, to_us(now))
        sql = (
            "INSERT OR IGNORE INTO fire_claims (job_id, scheduled_for_us, node_id, claimed_us) "
            "VALUES (?, ?, ?, ?)"
        )
        return await self._execute(sql, params) == 1

    # -- runs ------------------------------------------------------------------------------
    async def record_run(self, run: RunRecord) -> bool:
        params = _run_params(run)
        update = (*params[3:], params[0], params[1], params[2], params[12])

        # Updating in place leaves the job/time indexes alone; the upsert inserts, refuses by
        # fence, or (rarely) moves a run. Either order is correct; guessing right is faster.
        if run.fence == 0 and run.attempt == 1 and run.status in _FIRST_STATUSES:
            changed = await self._execute(_UPSERT_RUN, params, idempotent=True)
        else:
            changed = await self._execute(
                _UPDATE_RUN, update, fallback=(_UPSERT_RUN, params), idempotent=True
            )
        return changed == 1

    async def get_run(self, run_id: str) -> RunRecord | None:
        def op(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            return None if row is None else _run_from_row(row)

        return await self._read(op)

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        where, params = _where(query)
        sql = (
            f"SELECT {_RUN_COLUMNS} FROM runs{where} "
            "ORDER BY scheduled_for_us DESC, run_id DESC LIMIT ? OFFSET ?"
        )
        params += [max(0, query.limit), max(0, query.offset)]
        return await self._read(
            lambda conn: [_run_from_row(r) for r in conn.execute(sql, params).fetchall()]
        )

    async def count_runs(self, query: RunQuery) -> int:
        where, params = _where(query)
        sql = f"SELECT count(*) FROM runs{where}"
        return await self._read(lambda conn: int(conn.execute(sql, params).fetchone()[0]))

    async def run_stats(self, job_id: str) -> RunStats:
        return await self._read(lambda conn: _run_stats(conn, job_id))

    async def prune_runs(
        self, *, older_than: datetime | None = None, keep_per_job: int | None = None
    ) -> int:
        if keep_per_job is not None and keep_per_job < 0:
            raise ValueError(f"keep_per_job must be >= 0, not {keep_per_job}")
        cutoff_us = _opt_us(older_than)

        def op(conn: sqlite3.Connection) -> int:
            deleted = 0
            # Beyond-the-newest first: deleting old rows after it cannot change those ranks.
            if keep_per_job is not None:
                deleted += conn.execute(_PRUNE_BEYOND, (keep_per_job,)).rowcount
            if cutoff_us is not None:
                deleted += conn.execute(
                    f"DELETE FROM runs WHERE status NOT IN {_ACTIVE_SQL} AND scheduled_for_us < ?",
                    (cutoff_us,),
                ).rowcount
                conn.execute("DELETE FROM fire_claims WHERE scheduled_for_us < ?", (cutoff_us,))
            return deleted

        return await self._write(op)

    # -- leases ----------------------------------------------------------------------------
    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        params = (to_us(until), run_id, node_id, fence)
        sql = (
            "UPDATE runs SET lease_expires_us = ? WHERE run_id = ? AND status = 'running' "
            "AND node_id = ? AND fence = ?"
        )
        return await self._execute(sql, params, idempotent=True) == 1

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        now_us = to_us(now)

        def op(conn: sqlite3.Connection) -> list[RunRecord]:
            # Atomic across processes: the writer holds the file's write lock (BEGIN IMMEDIATE).
            # No ORDER BY in SQL: it would steer the planner away from the partial lease index.
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running' "
                "AND lease_expires_us <= ?",
                (now_us,),
            ).fetchall()
            rows.sort(key=lambda row: (row[2], row[0]))
            taken = []
            for row in rows:
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', fence = fence + 1, finished_us = ?, "
                    "lease_expires_us = NULL WHERE run_id = ?",
                    (now_us, row[0]),
                )
                run = _run_from_row(row)
                taken.append(
                    run.evolve(
                        status=RunStatus.interrupted,
                        fence=run.fence + 1,
                        finished_at=_req_dt(now_us),
                        lease_expires_at=None,
                    )
                )
            return taken

        return await self._write(op)

    # -- system state ----------------------------------------------------------------------
    async def get_state(self, key: str) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM system_state WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._read(op)

    async def set_state(self, key: str, value: str) -> None:
        params = (key, value, self._now_us())
        await self._execute(
            "INSERT INTO system_state (key, value, updated_us) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_us = excluded.updated_us",
            params,
            idempotent=True,
        )

    # -- nodes -----------------------------------------------------------------------------
    async def write_heartbeat(self, heartbeat: NodeHeartbeat) -> None:
        hb = heartbeat
        params = (
            hb.node_id, hb.sequence, to_us(hb.sent_at), hb.status, hb.host, hb.pid, hb.version,
            hb.platform, _opt_us(hb.started_at), hb.interval_s, _dumps(hb.details),
        )  # fmt: skip
        await self._execute(_UPSERT_HEARTBEAT, params, idempotent=True)

    async def list_heartbeats(self) -> list[NodeHeartbeat]:
        def op(conn: sqlite3.Connection) -> list[NodeHeartbeat]:
            sql = f"SELECT {_HEARTBEAT_COLUMNS} FROM node_heartbeats ORDER BY node_id"
            return [_heartbeat_from_row(row) for row in conn.execute(sql).fetchall()]

        return await self._read(op)

    async def delete_node(self, node_id: str) -> bool:
        return await self._execute("DELETE FROM node_heartbeats WHERE node_id = ?", (node_id,)) == 1

    # -- audit -----------------------------------------------------------------------------
    async def list_audit(self, job_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        def op(conn: sqlite3.Connection) -> list[AuditEntry]:
            columns = "job_id, action, actor, at_us, before, after"
            if job_id is None:
                sql = f"SELECT {columns} FROM job_audit ORDER BY id DESC LIMIT ?"
                rows = conn.execute(sql, (max(0, limit),)).fetchall()
            else:
                sql = f"SELECT {columns} FROM job_audit WHERE job_id = ? ORDER BY id DESC LIMIT ?"
                rows = conn.execute(sql, (job_id, max(0, limit))).fetchall()
            return [
                AuditEntry(
                    job_id=r[0],
                    action=r[1],
                    actor=r[2],
                    at=_req_dt(r[3]),
                    before=_loads_opt(r[4]),
                    after=_loads_opt(r[5]),
                )  # fmt: skip
                for r in rows
            ]

        return await self._read(op)


# -- SQL helpers used inside write transactions ----------------------------------------------
_UPSERT_RUN = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id) DO UPDATE SET job_id = excluded.job_id, "
    "scheduled_for_us = excluded.scheduled_for_us, status = excluded.status, "
    "attempt = excluded.attempt, started_us = excluded.started_us, "
    "finished_us = excluded.finished_us, error = excluded.error, "
    "output_tail = excluded.output_tail, node_id = excluded.node_id, "
    "skip_reason = excluded.skip_reason, lease_expires_us = excluded.lease_expires_us, "
    "fence = excluded.fence, queue_job_id = excluded.queue_job_id "
    # Fencing: a record from a node whose run was taken over (fence raised) is refused.
    "WHERE runs.fence <= excluded.fence"
)
_UPDATE_RUN = (
    "UPDATE runs SET status = ?, attempt = ?, started_us = ?, finished_us = ?, error = ?, "
    "output_tail = ?, node_id = ?, skip_reason = ?, lease_expires_us = ?, fence = ?, "
    "queue_job_id = ? WHERE run_id = ? AND job_id = ? AND scheduled_for_us = ? AND fence <= ?"
)
_UPSERT_HEARTBEAT = (
    f"INSERT INTO node_heartbeats ({_HEARTBEAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (node_id) DO UPDATE SET sequence = excluded.sequence, "
    "sent_us = excluded.sent_us, status = excluded.status, host = excluded.host, "
    "pid = excluded.pid, version = excluded.version, platform = excluded.platform, "
    "started_us = excluded.started_us, interval_s = excluded.interval_s, "
    "details = excluded.details"
)
_PRUNE_BEYOND = (
    "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM (SELECT run_id, row_number() OVER "
    "(PARTITION BY job_id ORDER BY scheduled_for_us DESC, run_id DESC) AS rank "
    f"FROM runs WHERE status NOT IN {_ACTIVE_SQL}) WHERE rank > ?)"
)


def _select_job(conn: sqlite3.Connection, job_id: str) -> StoredJob | None:
    row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else _job_from_row(row)


def _audit(
    conn: sqlite3.Connection,
    job_id: str,
    action: str,
    actor: str,
    at_us: int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    conn.execute(
        "INSERT INTO job_audit (job_id, action, actor, at_us, before, after) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (job_id, action, actor, at_us,
         None if before is None else _dumps(before), None if after is None else _dumps(after)),
    )  # fmt: skip


def _run_stats(conn: sqlite3.Connection, job_id: str) -> RunStats:
    """Aggregates in SQL; durations' percentiles by ORDER BY + OFFSET (nearest rank)."""
    total, succeeded, failed, skipped, last_ok_us, last_bad_us = conn.execute(
        "SELECT count(*), coalesce(sum(status = 'succeeded'), 0), "
        f"coalesce(sum(status IN {_FAILED_SQL}), 0), coalesce(sum(status = 'skipped'), 0), "
        "max(CASE WHEN status = 'succeeded' THEN coalesce(finished_us, scheduled_for_us) END), "
        f"max(CASE WHEN status IN {_FAILED_SQL} THEN coalesce(finished_us, scheduled_for_us) END) "
        "FROM runs WHERE job_id = ?",
        (job_id,),
    ).fetchone()
    p50, p95 = _duration_percentiles(conn, job_id)
    return RunStats(
        job_id=job_id,
        total=total,
        succeeded=succeeded,
        failed=failed,
        skipped=skipped,
        consecutive_failures=_consecutive_failures(conn, job_id),
        last_success=from_us(last_ok_us),
        last_failure=from_us(last_bad_us),
        p50_duration_s=p50,
        p95_duration_s=p95,
    )


def _consecutive_failures(conn: sqlite3.Connection, job_id: str) -> int:
    # Failures newer than the newest finished run that did not fail (skips do not count).
    boundary = conn.execute(
        "SELECT scheduled_for_us, run_id FROM runs WHERE job_id = ? "
        "AND status IN ('succeeded', 'cancelled') "
        "ORDER BY scheduled_for_us DESC, run_id DESC LIMIT 1",
        (job_id,),
    ).fetchone()
    if boundary is None:
        sql = f"SELECT count(*) FROM runs WHERE job_id = ? AND status IN {_FAILED_SQL}"
        return int(conn.execute(sql, (job_id,)).fetchone()[0])
    sql = (
        f"SELECT count(*) FROM runs WHERE job_id = ? AND status IN {_FAILED_SQL} "
        "AND (scheduled_for_us, run_id) > (?, ?)"
    )
    return int(conn.execute(sql, (job_id, boundary[0], boundary[1])).fetchone()[0])


# One pass: rank every duration, then pick the nearest ranks ceil(f * n) (as MemoryStore,
# in the same IEEE arithmetic: CAST truncates, the comparison adds the ceiling's one).
_PERCENTILES = (
    "WITH d AS (SELECT finished_us - started_us AS d, "
    "row_number() OVER (ORDER BY finished_us - started_us) AS rank, count(*) OVER () AS n "
    "FROM runs WHERE job_id = ? AND status NOT IN ('scheduled', 'running', 'skipped') "
    "AND started_us IS NOT NULL AND finished_us IS NOT NULL), "
    "want AS (SELECT DISTINCT n, ? * n AS p50, ? * n AS p95 FROM d) "
    "SELECT "
    "(SELECT d FROM d, want WHERE rank = max(1, CAST(p50 AS INTEGER) + (p50 > CAST(p50 AS INTEGER)))), "
    "(SELECT d FROM d, want WHERE rank = max(1, CAST(p95 AS INTEGER) + (p95 > CAST(p95 AS INTEGER))))"
)


def _duration_percentiles(conn: sqlite3.Connection, job_id: str) -> tuple[float | None, ...]:
    row = conn.execute(_PERCENTILES, (job_id, 0.50, 0.95)).fetchone()
    return tuple(None if us is None else us / 1_000_000 for us in row)
