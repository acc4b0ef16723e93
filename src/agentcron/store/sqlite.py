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

The parts: `sqlite_connect` (opening the file, errors), `sqlite_writer` (the threads),
`sqlite_codec` (rows), `sqlite_jobs` (jobs and audit), `sqlite_runs` (the run log).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from agentcron.clock import Clock, SystemClock
from agentcron.models import (
    AuditEntry,
    ConflictPolicy,
    FireStart,
    NodeHeartbeat,
    RunQuery,
    RunRecord,
    RunStats,
    StoredJob,
)
from agentcron.store import sqlite_jobs as jobs
from agentcron.store import sqlite_runs as runs
from agentcron.store.base import StoreError
from agentcron.store.checks import check_keep, check_paging, definition_json
from agentcron.store.sqlite_codec import (
    HEARTBEAT_COLUMNS,
    heartbeat_from_row,
    heartbeat_params,
    opt_us,
    run_from_row,
    run_params,
    run_update_params,
)
from agentcron.store.sqlite_codec import from_us as from_us  # re-exported: tests import it here
from agentcron.store.sqlite_codec import to_us as to_us  # re-exported: benches import it here
from agentcron.store.sqlite_connect import (
    SYNC_PRAGMA,
    Synchronous,
    check_readable,
    connect_reader,
    describe_sqlite_error,
    open_writer,
)
from agentcron.store.sqlite_file import FileId, Followed, file_id, follow_file
from agentcron.store.sqlite_writer import Readers, Writer

__all__ = ["SqliteStore", "describe_sqlite_error"]

T = TypeVar("T")
_UPSERT_HEARTBEAT = (
    f"INSERT INTO node_heartbeats ({HEARTBEAT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (node_id) DO UPDATE SET sequence = excluded.sequence, "
    "sent_us = excluded.sent_us, status = excluded.status, host = excluded.host, "
    "pid = excluded.pid, version = excluded.version, platform = excluded.platform, "
    "started_us = excluded.started_us, interval_s = excluded.interval_s, "
    "details = excluded.details"
)


# -- the store -------------------------------------------------------------------------------
_CLAIM = (
    "INSERT OR IGNORE INTO fire_claims (job_id, scheduled_for_us, node_id, claimed_us) "
    "VALUES (?, ?, ?, ?)"
)
_SET_STATE = "UPDATE jobs SET next_run_us = ?, last_fire_us = ? WHERE id = ?"
_record_runs = runs.record_runs  # `record_runs` takes a parameter named `runs`


def _claim_all(conn: sqlite3.Connection, claims: list[tuple[Any, ...]]) -> list[bool]:
    """Run `_CLAIM` for each of `claims` in order; whether each inserted its claim."""
    conn.execute("SAVEPOINT claims")
    # All at once first: when every claim or none was inserted, that says which.
    inserted = conn.executemany(_CLAIM, claims).rowcount
    if inserted in (0, len(claims)):
        conn.execute("RELEASE claims")
        return [inserted > 0] * len(claims)
    conn.execute("ROLLBACK TO claims")
    conn.execute("RELEASE claims")
    cursor = conn.cursor()
    return [cursor.execute(_CLAIM, claim).rowcount == 1 for claim in claims]


class SqliteStore:
    """The `Store` contract on one SQLite file; see the module docstring for the design.

    `read_only=True` opens only readers, for tools that look (`agentcron nodes`, `health`):
    no write lock is taken, not even to check the schema, so they answer at once while
    another process writes (a VACUUM, a long prune), and every write raises `StoreError`.
    The file must already be an agentcron database of this version's schema."""

    #: Each `start_fires` is a round trip to the writer thread and a savepoint in its
    #: transaction: few, large calls per tick (256 is what the engine bench measured).
    fire_batch = 256

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout_s: float = 10.0,
        clock: Clock | None = None,
        max_batch: int = 512,
        reader_threads: int = 2,
        read_only: bool = False,
    ) -> None:
        if synchronous not in SYNC_PRAGMA:
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        if busy_timeout_s < 0:
            raise ValueError(f"busy_timeout_s must be >= 0, not {busy_timeout_s!r}")
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.synchronous: Synchronous = synchronous
        self.busy_timeout_s = busy_timeout_s
        self.max_batch = max_batch
        self.reader_threads = max(1, reader_threads)
        self.read_only = read_only
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._writer: Writer | None = None
        self._readers: Readers | None = None
        self._open_lock: asyncio.Lock | None = None
        #: `(before, after)` schema versions of the last `open()`.
        self.migrated: tuple[int, int] | None = None
        #: The file the writer has open (`notice_data_loss` compares the path's with it).
        self._file: FileId | None = None
        #: How many times the file at `path` was found replaced by another one and the store
        #: moved to it (`notice_data_loss`): the scheduler then writes its jobs back.
        self.data_losses = 0

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
            if self._readers is not None:
                return
            if self.read_only:
                await asyncio.to_thread(check_readable, self.path, self.busy_timeout_s)
                self._readers = Readers(self._connect_reader, self.reader_threads)
                return
            write_conn, self.migrated = await asyncio.to_thread(
                open_writer, self.path, self.busy_timeout_s, self.synchronous
            )
            self._file = file_id(self.path)
            self._readers = Readers(self._connect_reader, self.reader_threads)
            self._writer = Writer(write_conn, self.path, self.max_batch)
            self._writer.start()

    async def notice_data_loss(self) -> None:
        """Check that `path` still names the file this store has open; if it was deleted
        or replaced meanwhile, write it back or move to the new one (`sqlite_file`).
        The scheduler asks at each lease renewal."""
        writer, readers = self._writer, self._readers
        if writer is None or readers is None or self._file is None:
            return
        if await asyncio.to_thread(file_id, self.path) == self._file:
            return
        now = self._clock.now()

        def follow(conn: sqlite3.Connection) -> tuple[sqlite3.Connection, Followed]:
            return follow_file(conn, self.path, self._reopen_writer, now)

        followed = await writer.submit_switch(follow)
        self._file = await asyncio.to_thread(file_id, self.path)
        readers.reconnect()
        if followed == "replaced":
            self.data_losses += 1

    def _reopen_writer(self) -> sqlite3.Connection:
        conn, _ = open_writer(self.path, self.busy_timeout_s, self.synchronous)
        return conn

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

    def _connect_reader(self) -> sqlite3.Connection:
        return connect_reader(self.path, self.busy_timeout_s, self.synchronous)

    async def _write(
        self, fn: Callable[[sqlite3.Connection], T], *, single_statement: bool = False
    ) -> T:
        """Run `fn(conn)` in the writer's next transaction; returns after the commit.

        `single_statement=True` (fn's effect is all or nothing without a savepoint, e.g. one
        SQL statement) skips the savepoint.
        """
        if self._writer is None:
            self._refuse_if_read_only()
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
        with the same statements queued beside it (see `sqlite_writer._Op.idempotent`)."""
        if self._writer is None:
            self._refuse_if_read_only()
            await self.open()
        assert self._writer is not None
        return await self._writer.submit_statement(
            sql, params, fallback=fallback, idempotent=idempotent
        )

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise StoreError(
                f"{self.path} is open read-only here; write through `agentcron run` or a "
                "store opened without read_only"
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
        text = definition_json(job)
        definition = json.loads(text)  # normalised as it will read back
        now_us = self._now_us()
        return await self._write(
            lambda conn: jobs.save_job(
                conn, job, definition, text, actor=actor, conflict=conflict, now_us=now_us
            )
        )

    async def get_job(self, job_id: str) -> StoredJob | None:
        return await self._read(lambda conn: jobs.select_job(conn, job_id))

    async def list_jobs(self) -> list[StoredJob]:
        return await self._read(jobs.list_jobs)

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        now_us = self._now_us()
        return await self._write(
            lambda conn: jobs.delete_job(conn, job_id, actor=actor, now_us=now_us)
        )

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        now_us = self._now_us()
        return await self._write(
            lambda conn: jobs.set_paused(
                conn, job_id, paused, note=note, actor=actor, now_us=now_us
            )
        )

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        params = (opt_us(next_run), opt_us(last_fire), job_id)
        await self._execute(_SET_STATE, params, idempotent=True)

    # -- claims ----------------------------------------------------------------------------
    async def claim_fire(
        self, job_id: str, scheduled_for: datetime, node_id: str, *, now: datetime
    ) -> bool:
        params = (job_id, to_us(scheduled_for), node_id, to_us(now))
        return await self._execute(_CLAIM, params) == 1

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        if not fires:
            return []
        now_us = to_us(now)
        claims = [(f.job_id, to_us(f.scheduled_for), node_id, now_us) for f in fires]
        states = [(opt_us(f.next_run), opt_us(f.last_fire), f.job_id) for f in fires]

        def op(conn: sqlite3.Connection) -> list[bool]:
            won = _claim_all(conn, claims)
            conn.executemany(_SET_STATE, [s for s, ok in zip(states, won, strict=True) if ok])
            runs.insert_runs(
                conn, [f.run for f, ok in zip(fires, won, strict=True) if ok and f.run]
            )
            return won

        return await self._write(op)

    # -- runs ------------------------------------------------------------------------------
    async def record_run(self, run: RunRecord) -> bool:
        params = run_params(run)
        # Updating in place leaves the job/time indexes alone; the upsert inserts, refuses by
        # fence, or (rarely) moves a run. Either order is correct; guessing right is faster.
        if run.fence == 0 and run.attempt == 1 and run.status in runs.FIRST_STATUSES:
            changed = await self._execute(runs.UPSERT_RUN, params, idempotent=True)
        else:
            changed = await self._execute(
                runs.UPDATE_RUN,
                run_update_params(run),
                fallback=(runs.UPSERT_RUN, params),
                idempotent=True,
            )
        return changed == 1

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        if not runs:
            return []
        return await self._write(lambda conn: _record_runs(conn, runs))

    async def get_run(self, run_id: str) -> RunRecord | None:
        return await self._read(lambda conn: runs.get_run(conn, run_id))

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        check_paging(query)
        sql, params = runs.list_query(query)
        return await self._read(
            lambda conn: [run_from_row(r) for r in conn.execute(sql, params).fetchall()]
        )

    async def count_runs(self, query: RunQuery) -> int:
        sql, params = runs.count_query(query)
        return await self._read(lambda conn: int(conn.execute(sql, params).fetchone()[0]))

    async def run_stats(self, job_id: str) -> RunStats:
        return await self._read(lambda conn: runs.run_stats(conn, job_id))

    async def prune_runs(
        self, *, older_than: datetime | None = None, keep_per_job: int | None = None
    ) -> int:
        check_keep(keep_per_job)
        cutoff_us = opt_us(older_than)
        return await self._write(lambda conn: runs.prune_runs(conn, keep_per_job, cutoff_us))

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
        return await self._write(lambda conn: runs.interrupt_expired(conn, now_us))

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
        params = heartbeat_params(heartbeat)
        await self._execute(_UPSERT_HEARTBEAT, params, idempotent=True)

    async def list_heartbeats(self) -> list[NodeHeartbeat]:
        def op(conn: sqlite3.Connection) -> list[NodeHeartbeat]:
            sql = f"SELECT {HEARTBEAT_COLUMNS} FROM node_heartbeats ORDER BY node_id"
            return [heartbeat_from_row(row) for row in conn.execute(sql).fetchall()]

        return await self._read(op)

    async def delete_node(self, node_id: str) -> bool:
        return await self._execute("DELETE FROM node_heartbeats WHERE node_id = ?", (node_id,)) == 1

    # -- audit -----------------------------------------------------------------------------
    async def list_audit(self, job_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        return await self._read(lambda conn: jobs.list_audit(conn, job_id, limit))
