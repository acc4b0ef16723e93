"""`SqliteQueue`: the embedded queue, in the same database file as the store.

Layout: one row per job in ``queue_jobs`` (all queues of the file), one row per queue in
``queue_meta`` (paused flag, rate-limit window), one per repeatable in ``queue_repeatables``;
``queue_schema_version`` records this module's schema version (the store owns
``PRAGMA user_version``). ``at_ms`` is "the time that matters in the current state": when it
became ready (waiting), when it is due (delayed), when its lease expires (active), when it
finished (completed, failed). ``rank`` is the priority while waiting and 0 otherwise, so one
index ``(queue, state, rank, at_ms)`` serves the claim order (rank, then time, then rowid)
and every by-time scan (due delayed jobs, expired leases, old finished jobs); each index
costs every insert, and single adds are a hot path. Times are epoch milliseconds of the
injected clock.

Several processes may share the file: a claim is one ``BEGIN IMMEDIATE`` transaction
(promote due delayed jobs, apply the rate window, ``UPDATE ... RETURNING`` the next jobs by
priority then time), so each job is handed to one worker at a time. Calls run on the event
loop thread: each is one short transaction (a writer waits at most ``busy_timeout_ms``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from agentcron.clock import Clock, SystemClock
from agentcron.events import (
    EventBus,
    QueueJobProgress,
    QueueJobStateChanged,
    QueuePaused,
    QueueResumed,
)
from agentcron.queue import sqlite_sql as sql
from agentcron.queue.base import (
    MAX_COUNT,
    MAX_REPEAT_KEY_LENGTH,
    Backoff,
    BulkJob,
    CleanState,
    Handler,
    Job,
    JobInfo,
    QueueError,
    QueueInputError,
    RateLimit,
    Retention,
    check_jobs_page,
    check_queue_name,
    check_text,
    check_utf8,
    clean_grace_ms,
    encode_data,
    keep_count,
    retention_from_count,
    validate_job,
)
from agentcron.queue.sqlite_sql import SCHEMA_VERSION
from agentcron.queue.worker import Finished, Worker
from agentcron.store.base import StoreError
from agentcron.store.migrations import check_identity, check_sqlite_header, read_identity
from agentcron.store.sqlite_connect import describe_sqlite_error
from agentcron.store.sqlite_file import FileId, file_id, follow_file

__all__ = ["SqliteQueue"]

log = logging.getLogger("agentcron.queue")


P = ParamSpec("P")
R = TypeVar("R")


def _translated(
    action: str,
) -> Callable[
    [Callable[Concatenate[SqliteQueue, P], Coroutine[Any, Any, R]]],
    Callable[Concatenate[SqliteQueue, P], Coroutine[Any, Any, R]],
]:
    """Driver errors of the decorated method become `SqliteQueue._error`s (`action`: what
    the method does to the file, for the message)."""

    def decorate(
        method: Callable[Concatenate[SqliteQueue, P], Coroutine[Any, Any, R]],
    ) -> Callable[Concatenate[SqliteQueue, P], Coroutine[Any, Any, R]]:
        @functools.wraps(method)
        async def wrapper(self: SqliteQueue, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(self, *args, **kwargs)
            except _DescribedError:
                raise
            except sqlite3.Error as exc:
                raise self._error(exc, action) from exc

        return wrapper

    return decorate


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dt(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms is not None else None


def _encode_backoff(backoff: Backoff | None) -> str | None:
    return None if backoff is None else json.dumps([backoff.kind, backoff.delay_s])


def _decode_backoff(text: str | None) -> Backoff | None:
    if text is None:
        return None
    kind, delay_s = json.loads(text)
    return Backoff(kind, delay_s)


class SqliteQueue:
    """A `Queue` on a SQLite file (``path``; ``":memory:"`` for one process).

    ``synchronous`` is ``NORMAL`` (default: committed jobs survive a crash of the process,
    the last ones may be lost on power loss) or ``FULL`` (fsync on every commit).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        clock: Clock | None = None,
        events: EventBus | None = None,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 5000,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL", "EXTRA", "OFF"):
            raise QueueInputError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        if (
            isinstance(busy_timeout_ms, bool)
            or not isinstance(busy_timeout_ms, int)
            or not 0 <= busy_timeout_ms <= MAX_COUNT
        ):
            raise QueueInputError(
                f"busy_timeout_ms must be an integer from 0 to {MAX_COUNT}, got {busy_timeout_ms!r}"
            )
        self.path = str(path)
        self.name = check_queue_name(name)
        self.url = f"sqlite:///{self.path}"
        self.clock: Clock = clock or SystemClock()
        self._system_clock = type(self.clock) is SystemClock
        self.events = events
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self._conn: sqlite3.Connection | None = None
        #: The file `_conn` has open (`_follow_file` compares the path's with it).
        self._file: FileId | None = None
        self._added = asyncio.Event()
        # Generated ids: time first so the unique index grows at its end (random ids make
        # every insert touch a random page), then this object's random tag and a counter.

    # -- connection -------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (opened, and the queue's tables made, on first use)."""
        if self._conn is None:
            self._conn = self._connect()
            self._file = None if self.path == ":memory:" else file_id(Path(self.path))
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                check_sqlite_header(Path(self.path))
        except OSError as exc:
            raise QueueError(
                f"cannot open queue database {self.path}: {exc}; choose a writable directory"
            ) from exc
        except StoreError as exc:
            raise QueueError(str(exc)) from None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            # Another agentcron's or a foreign file is refused before anything is written.
            check_identity(read_identity(conn), self.path)
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            self._migrate(conn)
        except BaseException as exc:
            # Not left to the garbage collector: the file would stay open until it runs (a
            # file of a newer agentcron, refused, held its descriptor).
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc, "open") from exc
            if isinstance(exc, StoreError):
                raise QueueError(str(exc)) from None
            raise
        return conn

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        if _schema_version(conn) == SCHEMA_VERSION:
            # Current: no write lock, so a read works on read-only media and while another
            # process writes.
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in sql.SCHEMA:
                conn.execute(statement)
            version = _schema_version(conn) or 0
            if version > SCHEMA_VERSION:
                raise QueueError(
                    f"queue schema version {version} is newer than this agentcron ({SCHEMA_VERSION})"
                )
            if version < SCHEMA_VERSION:
                conn.execute(
                    "INSERT INTO queue_schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _error(self, exc: sqlite3.Error, action: str) -> Exception:
        """`exc` as the error to raise, its message naming the file and what to do: a
        `QueueError` when retrying cannot help (a corrupt file) or the file cannot be opened,
        else an `sqlite3.OperationalError` (locked, disk full, I/O error: a worker retries
        those)."""
        message = str(describe_sqlite_error(exc, self.path, f"{action} queue database"))
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if (
            action != "open"
            and isinstance(exc, sqlite3.OperationalError)
            and code not in _CORRUPT_CODES
        ):
            return _DescribedError(message)
        return QueueError(message)

    def _follow_file(self) -> None:
        """When `path` no longer names the file open (deleted, or replaced by a new database
        such as the one `agentcron queue add` makes after an `rm`), go on with the file at
        `path` as the store does (`agentcron.store.sqlite_file`): a deleted file is written
        back; a replaced one is kept beside it (``.orphaned-<time>``) and the new one used.
        One os.stat: called where a worker polls, not on every add."""
        conn, known = self._conn, self._file
        if conn is None or known is None:
            return
        path = Path(self.path)
        if file_id(path) == known:
            return
        new_conn, _ = follow_file(conn, path, self._connect, self.clock.now())
        conn.close()
        self._conn, self._file = new_conn, file_id(path)
        self._added.set()

    @_translated("check")
    async def check_integrity(self) -> None:
        """Raise `QueueError` when the queue's tables or indexes are damaged (SQLite's
        ``PRAGMA quick_check`` of them: it reads every page of the queue's tables, not the
        rest of the file). The `agentcron queue` commands ask before they read or write."""
        for table in ("queue_jobs", "queue_meta", "queue_repeatables"):
            problems = [
                " ".join(str(row[0]).split())  # one line: rows may hold newlines
                for row in self.db.execute(f"PRAGMA quick_check({table})")
            ]
            if problems != ["ok"]:
                raise QueueError(
                    f"{self.path} is corrupt ({'; '.join(problems[:2])}); restore a backup"
                    " with `agentcron db restore FILE` (`agentcron db check` shows the damage)"
                )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _now_ms(self) -> int:
        if self._system_clock:
            return int(time.time() * 1000)  # same reading as SystemClock.now(), cheaper
        return _ms(self.clock.now())

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- adding -----------------------------------------------------------------------
    def _row(self, job: BulkJob, now_ms: int) -> tuple[Any, ...]:
        return self._make_row(
            job.name,
            job.data,
            job.priority,
            job.delay,
            job.attempts,
            job.backoff,
            job.job_id,
            job.remove_on_complete,
            job.remove_on_fail,
            now_ms,
        )

    def _make_row(
        self,
        name: str,
        data: Any,
        priority: int,
        delay: float,
        attempts: int,
        backoff: Backoff | None,
        job_id: str | None,
        remove_on_complete: Retention,
        remove_on_fail: Retention,
        now_ms: int,
    ) -> tuple[Any, ...]:
        """The validated `queue_jobs` row of one job (raises `QueueInputError`)."""
        validate_job(
            name=name,
            priority=priority,
            delay=delay,
            attempts=attempts,
            job_id=job_id,
            remove_on_complete=remove_on_complete,
            remove_on_fail=remove_on_fail,
        )
        delayed = delay > 0
        return (
            self.name,
            job_id,
            name,
            encode_data(data),
            "delayed" if delayed else "waiting",
            priority,
            0 if delayed else priority,
            now_ms + round(delay * 1000) if delayed else now_ms,
            attempts,
            _encode_backoff(backoff),
            keep_count(remove_on_complete),
            keep_count(remove_on_fail),
            now_ms,
        )

    @_translated("write")
    async def add(
        self,
        name: str,
        data: Any = None,
        *,
        priority: int = 0,
        delay: float = 0.0,
        attempts: int = 1,
        backoff: Backoff | None = None,
        job_id: str | None = None,
        remove_on_complete: Retention = False,
        remove_on_fail: Retention = False,
    ) -> str:
        row = self._make_row(
            name,
            data,
            priority,
            delay,
            attempts,
            backoff,
            job_id,
            remove_on_complete,
            remove_on_fail,
            self._now_ms(),
        )
        added = _insert(self.db, row)
        self._added.set()
        self._publish_added(added, row[4])
        return added

    @_translated("write")
    async def add_bulk(self, jobs: Sequence[BulkJob]) -> list[str]:
        now_ms = self._now_ms()
        rows = [self._row(job, now_ms) for job in jobs]
        with self._tx() as db:
            ids = [_insert(db, row) for row in rows]
        self._added.set()
        for job_id, row in zip(ids, rows, strict=True):
            self._publish_added(job_id, row[4])
        return ids

    def _publish_added(self, job_id: str, state: str) -> None:
        if self.events is not None:
            self.events.publish(
                QueueJobStateChanged(
                    at=self.clock.now(), queue=self.name, job_id=job_id, state=state
                )
            )

    # -- reading ----------------------------------------------------------------------
    @_translated("read")
    async def get(self, job_id: str) -> JobInfo | None:
        if not isinstance(job_id, str):
            raise QueueInputError(f"job id must be a string, got {job_id!r}")
        check_utf8(job_id, "job id")
        # Ids are compared as text: only the canonical decimal of a row number ("1", not
        # "01", "١" or "²", which int() also reads) names a job without a custom id.
        if _ROW_NUMBER.fullmatch(job_id):
            if int(job_id) > _MAX_SEQ:
                return None  # beyond SQLite's integers: no row can have it
            where, key = "seq=? AND id IS NULL", int(job_id)
        else:
            where, key = "id=?", job_id  # type: ignore[assignment]
        row = self.db.execute(
            f"SELECT {sql.COLUMNS} FROM queue_jobs WHERE queue=? AND {where}", (self.name, key)
        ).fetchone()
        if row is None:
            return None
        return _info(row, paused=row[3] == "waiting" and await self.is_paused())

    @_translated("read")
    async def jobs(self, state: str, *, offset: int = 0, limit: int = 50) -> list[JobInfo]:
        check_jobs_page(state, offset, limit)
        # `rank=0` outside waiting lets the index serve the order (as the other scans do).
        query = sql.LIST.format(
            rank="" if state == "waiting" else " AND rank=0", order=sql.LIST_ORDER[state]
        )
        rows = self.db.execute(query, (self.name, state, limit, offset)).fetchall()
        paused = state == "waiting" and bool(rows) and await self.is_paused()
        return [_info(row, paused=paused) for row in rows]

    @_translated("read")
    async def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("waiting", "active", "completed", "failed", "delayed", "paused"), 0)
        for state, count in self.db.execute(
            "SELECT state, count(*) FROM queue_jobs WHERE queue=? GROUP BY state", (self.name,)
        ):
            out[state] = count
        if await self.is_paused():
            out["paused"], out["waiting"] = out["waiting"], 0
        return out

    @_translated("read")
    async def is_paused(self) -> bool:
        row = self.db.execute(
            "SELECT paused FROM queue_meta WHERE queue=?", (self.name,)
        ).fetchone()
        return bool(row and row[0])

    # -- managing ---------------------------------------------------------------------
    @_translated("write")
    async def pause(self) -> None:
        self._set_paused(True)
        if self.events is not None:
            self.events.publish(QueuePaused(at=self.clock.now(), queue=self.name))

    @_translated("write")
    async def resume(self) -> None:
        self._set_paused(False)
        self._added.set()
        if self.events is not None:
            self.events.publish(QueueResumed(at=self.clock.now(), queue=self.name))

    def _set_paused(self, paused: bool) -> None:
        self.db.execute(
            "INSERT INTO queue_meta (queue, paused) VALUES (?, ?)"
            " ON CONFLICT (queue) DO UPDATE SET paused=excluded.paused",
            (self.name, int(paused)),
        )

    @_translated("write")
    async def clean(
        self, grace: float, limit: int = 0, state: CleanState = "completed"
    ) -> list[str]:
        cutoff_ms = self._now_ms() - clean_grace_ms(grace, limit, state)
        # For delayed jobs `at_ms` is the due time; age is measured from creation.
        column = "created_ms" if state in ("waiting", "delayed") else "at_ms"
        with self._tx() as db:
            rows = db.execute(
                f"DELETE FROM queue_jobs WHERE seq IN (SELECT seq FROM queue_jobs WHERE queue=?"
                f" AND state=? AND {column}<=? ORDER BY {column} LIMIT ?) RETURNING {sql.ID}",
                (self.name, state, cutoff_ms, limit or -1),
            ).fetchall()
        return [row[0] for row in rows]

    @_translated("write")
    async def retry_failed(self) -> int:
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE queue_jobs SET state='waiting', rank=priority, at_ms=?, attempts_made=0,"
                " stalled=0, finished_ms=NULL, error=NULL, result=NULL, progress=0, token=NULL"
                " WHERE queue=? AND state='failed'",
                (self._now_ms(), self.name),
            )
        self._added.set()
        return cursor.rowcount

    # -- repeatables ------------------------------------------------------------------
    @_translated("write")
    async def add_repeatable(
        self, name: str, data: Any = None, *, cron: str, tz: str = "UTC", key: str | None = None
    ) -> str:
        from agentcron.queue.repeat import next_fire_ms, repeat_key, validate_repeatable

        if key is not None:
            check_text(key, "repeat key", MAX_REPEAT_KEY_LENGTH)
        validate_repeatable(name)  # before the key is derived from it (hashing its UTF-8)
        key = key or repeat_key(name, cron, tz)
        next_fire_ms(cron, tz, self._now_ms())  # validates before anything is written
        encoded = encode_data(data)
        self.db.execute(
            "INSERT INTO queue_repeatables (queue, key, name, data, cron, tz) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (queue, key) DO UPDATE SET name=excluded.name, data=excluded.data,"
            " cron=excluded.cron, tz=excluded.tz",
            (self.name, key, name, encoded, cron, tz),
        )
        await self.tick_repeatables()
        return key

    @_translated("write")
    async def remove_repeatable(self, key: str) -> bool:
        from agentcron.queue.repeat import occurrence_prefix

        if not isinstance(key, str):
            raise QueueInputError(f"repeat key must be a string, got {key!r}")
        check_utf8(key, "repeat key")
        prefix = occurrence_prefix(key)
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM queue_repeatables WHERE queue=? AND key=?", (self.name, key)
            )
            # Its next occurrence, enqueued delayed, goes too (as BullMQ's removeRepeatable).
            db.execute(
                "DELETE FROM queue_jobs WHERE queue=? AND state='delayed' AND substr(id, 1, ?)=?",
                (self.name, len(prefix), prefix),
            )
        return cursor.rowcount > 0

    @_translated("write")
    async def tick_repeatables(self) -> float | None:
        from agentcron.queue.repeat import next_fire_ms, occurrence_id

        now_ms = self._now_ms()
        soonest: int | None = None
        specs = self.db.execute(
            "SELECT key, name, data, cron, tz FROM queue_repeatables WHERE queue=?", (self.name,)
        ).fetchall()
        for key, name, data, cron, tz in specs:
            fire_ms = next_fire_ms(cron, tz, now_ms)
            if fire_ms is None:
                continue
            soonest = fire_ms if soonest is None else min(soonest, fire_ms)
            job = BulkJob(
                name,
                json.loads(data),
                delay=(fire_ms - now_ms) / 1000,
                job_id=occurrence_id(key, fire_ms),
            )
            self.db.execute(sql.INSERT, self._row(job, now_ms))
        return None if soonest is None else (soonest - now_ms) / 1000

    # -- workers ----------------------------------------------------------------------
    def worker(
        self,
        handler: Handler,
        *,
        concurrency: int = 1,
        rate_limit: tuple[int, float] | None = None,
        **options: Any,
    ) -> Worker:
        return Worker(self, handler, concurrency=concurrency, rate_limit=rate_limit, **options)

    @_translated("write")
    async def exchange(
        self,
        finished: Sequence[Finished],
        claim: int,
        *,
        token: str,
        lease_s: float,
        rate: RateLimit | None,
    ) -> tuple[list[Job], float | None]:
        self._follow_file()
        now_ms = self._now_ms()
        with self._tx() as db:
            if finished:
                self._settle(db, finished, now_ms)
            if claim <= 0:
                return [], None
            return self._claim(db, claim, token, now_ms, lease_s, rate)

    def _settle(self, db: sqlite3.Connection, finished: Sequence[Finished], now_ms: int) -> None:
        completed: list[tuple[Any, ...]] = []
        failed: list[tuple[Any, ...]] = []
        retried: list[tuple[Any, ...]] = []
        deleted: list[tuple[Any, ...]] = []
        trims: dict[str, int] = {}
        for f in finished:
            job = f.job
            if f.outcome == "retry":
                delay_ms = round(f.delay_s * 1000)
                state = "delayed" if delay_ms > 0 else "waiting"
                retried.append((state, state, now_ms + delay_ms, f.value, job.raw, job.token))
                continue
            keep = keep_count(job.keep_completed if f.outcome == "completed" else job.keep_failed)
            if keep == 0:
                deleted.append((job.raw, job.token))
            elif f.outcome == "completed":
                completed.append((now_ms, now_ms, _encode_result(f.value), job.raw, job.token))
            else:
                failed.append((now_ms, now_ms, str(f.value), job.raw, job.token))
            if keep > 0:
                trims[f.outcome] = min(keep, trims.get(f.outcome, keep))
        if completed:
            db.executemany(sql.COMPLETE, completed)
        if failed:
            db.executemany(sql.FAIL, failed)
        if retried:
            db.executemany(sql.RETRY, retried)
        if deleted:
            db.executemany(sql.DELETE_OWNED, deleted)
        for state, keep in trims.items():
            db.execute(sql.TRIM, (self.name, state, keep))

    def _claim(
        self,
        db: sqlite3.Connection,
        claim: int,
        token: str,
        now_ms: int,
        lease_s: float,
        rate: RateLimit | None,
    ) -> tuple[list[Job], float | None]:
        meta = db.execute(
            "SELECT paused, window_start_ms, window_count FROM queue_meta WHERE queue=?",
            (self.name,),
        ).fetchone()
        paused, window_start_ms, window_count = meta if meta else (0, 0, 0)
        # Due delayed jobs become waiting even while paused (as BullMQ moves them to its
        # paused list): a paused queue then reports them as paused, not as delayed forever.
        db.execute(sql.PROMOTE, (self.name, now_ms))
        if paused:
            return [], None
        if rate is not None:
            period_ms = round(rate.per_s * 1000)
            if now_ms >= window_start_ms + period_ms:
                window_start_ms, window_count = now_ms, 0
            allowed = rate.max_jobs - window_count
            if allowed <= 0:
                return [], (window_start_ms + period_ms - now_ms) / 1000
            claim = min(claim, allowed)
        rows = db.execute(
            sql.CLAIM, (token, now_ms + round(lease_s * 1000), self.name, claim)
        ).fetchall()
        if rate is not None and rows:
            db.execute(
                "INSERT INTO queue_meta (queue, window_start_ms, window_count) VALUES (?,?,?)"
                " ON CONFLICT (queue) DO UPDATE SET window_start_ms=excluded.window_start_ms,"
                " window_count=excluded.window_count",
                (self.name, window_start_ms, window_count + len(rows)),
            )
        rows.sort(key=lambda r: (r[4], r[0]))
        jobs = [self._job(row, token) for row in rows]
        hint: float | None = None
        if len(jobs) < claim:
            hint = self._next_due_s(db, now_ms)
        return jobs, hint

    def _job(self, row: tuple[Any, ...], token: str) -> Job:
        seq, id_, name, data, priority, attempts, made, backoff, keep_c, keep_f = row
        return Job(
            id=id_,
            name=name,
            data=json.loads(data),
            attempt=made,
            attempts=attempts,
            priority=priority,
            backoff=_decode_backoff(backoff),
            token=token,
            keep_completed=retention_from_count(keep_c),
            keep_failed=retention_from_count(keep_f),
            raw=seq,
        )

    def _next_due_s(self, db: sqlite3.Connection, now_ms: int) -> float | None:
        row = db.execute(
            "SELECT min(at_ms) FROM queue_jobs WHERE queue=? AND state='delayed' AND rank=0",
            (self.name,),
        ).fetchone()
        return None if row is None or row[0] is None else max(row[0] - now_ms, 0) / 1000

    @_translated("write")
    async def extend(self, jobs: Sequence[Job], lease_s: float) -> list[str]:
        until_ms = self._now_ms() + round(lease_s * 1000)
        lost: list[str] = []
        with self._tx() as db:
            for job in jobs:
                cursor = db.execute(
                    "UPDATE queue_jobs SET at_ms=? WHERE seq=? AND token=? AND state='active'",
                    (until_ms, job.raw, job.token),
                )
                if cursor.rowcount == 0:
                    lost.append(job.id)
        return lost

    @_translated("write")
    async def recover_stalled(self, max_stalled: int, stalled_interval_s: float) -> None:
        now_ms = self._now_ms()
        with self._tx() as db:
            stalled = db.execute(
                "UPDATE queue_jobs SET stalled=stalled+1, token=NULL,"
                " state=CASE WHEN stalled+1>? THEN 'failed' ELSE 'waiting' END,"
                " rank=CASE WHEN stalled+1>? THEN 0 ELSE priority END,"
                " error=CASE WHEN stalled+1>? THEN 'job stalled more than allowable limit'"
                " ELSE error END, finished_ms=CASE WHEN stalled+1>? THEN ? ELSE NULL END,"
                " at_ms=? WHERE queue=? AND state='active' AND rank=0 AND at_ms<?"
                f" RETURNING {sql.ID}, state, attempts_made",
                (
                    max_stalled,
                    max_stalled,
                    max_stalled,
                    max_stalled,
                    now_ms,
                    now_ms,
                    self.name,
                    now_ms,
                ),
            ).fetchall()
        for job_id, state, made in stalled:
            log.warning(
                "queue %s: job %s stalled (its worker lost its lease): %s", self.name, job_id, state
            )
            if self.events is not None:
                self.events.publish(
                    QueueJobStateChanged(
                        at=self.clock.now(),
                        queue=self.name,
                        job_id=job_id,
                        state=state,
                        attempt=made,
                        error="stalled",
                    )
                )

    @_translated("write")
    async def report_progress(self, job: Job, pct: float) -> None:
        self.db.execute("UPDATE queue_jobs SET progress=? WHERE seq=?", (pct, job.raw))
        if self.events is not None:
            self.events.publish(
                QueueJobProgress(at=self.clock.now(), queue=self.name, job_id=job.id, progress=pct)
            )

    @_translated("read")
    async def has_work(self) -> bool:
        if await self.is_paused():
            row = self.db.execute(
                "SELECT 1 FROM queue_jobs WHERE queue=? AND state='delayed' LIMIT 1", (self.name,)
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT 1 FROM queue_jobs WHERE queue=? AND state IN ('waiting','delayed') LIMIT 1",
                (self.name,),
            ).fetchone()
        return row is not None

    async def wait_for_work(self, timeout_s: float) -> None:
        # Another process's add cannot wake us: poll. Adds through this object wake at once.
        self._added.clear()
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout_s))
        waker = asyncio.ensure_future(self._added.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()


class _DescribedError(sqlite3.OperationalError):
    """A driver error whose message names the file and what to do (`SqliteQueue._error`)."""


#: SQLite's result codes of a file that is damaged or not a database.
_CORRUPT_CODES = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _schema_version(conn: sqlite3.Connection) -> int | None:
    """The queue schema version of the file, None when it has no queue tables yet."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='queue_schema_version'"
    ).fetchone()
    if exists is None:
        return None
    row = conn.execute("SELECT max(version) FROM queue_schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


#: The text of a generated id (a row number) and nothing else.
_ROW_NUMBER = re.compile(r"[1-9][0-9]*")
#: SQLite's largest integer: no row number is larger.
_MAX_SEQ = 2**63 - 1


def _insert(db: sqlite3.Connection, row: tuple[Any, ...]) -> str:
    """Insert one job row; its id (the custom id, or the new row number)."""
    cursor = db.execute(sql.INSERT, row)
    return str(row[1]) if row[1] is not None else str(cursor.lastrowid)


def _info(row: tuple[Any, ...], *, paused: bool) -> JobInfo:
    """A `sql.COLUMNS` row as a `JobInfo` (a waiting job of a paused queue is "paused")."""
    id_, name, data, state, priority, attempts, made, progress, result, error, created, fin = row
    return JobInfo(
        id=id_,
        name=name,
        data=json.loads(data),
        state="paused" if paused else state,
        priority=priority,
        attempts=attempts,
        attempts_made=made,
        progress=progress,
        result=json.loads(result) if result is not None else None,
        error=error,
        created_at=_dt(created),
        finished_at=_dt(fin),
    )


def _encode_result(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(repr(value))
