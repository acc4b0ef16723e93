"""The threads that own `SqliteStore`'s connections: one writer with group commits, and a
few readers.

`Writer` takes whatever writes are queued (up to `max_batch`), runs them in one
`BEGIN IMMEDIATE` transaction and commits; each caller's future resolves only after that
commit, with one wake-up per event loop and batch. A multi-statement write runs inside a
savepoint, so one failing write does not undo the others; consecutive idempotent statements
of the same SQL go to SQLite with one `executemany`.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agentcron.store.base import StoreError
from agentcron.store.sqlite_codec import inline_nulls
from agentcron.store.sqlite_connect import describe_sqlite_error

__all__ = ["Readers", "Writer"]

T = TypeVar("T")


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
    #: Run outside any transaction, alone (`Writer.submit_switch`).
    alone: bool = False
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


class Writer(threading.Thread):
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

    def submit_switch(
        self, switch: Callable[[sqlite3.Connection], tuple[sqlite3.Connection | None, T]]
    ) -> asyncio.Future[T]:
        """Run `switch(conn)` alone, between two transactions (the writes queued before it
        are committed, those after it wait): it returns a connection to write through from
        then on (the old one is closed), or None to keep it, and its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Op(switch, future, loop, alone=True))
        return future

    def stop(self) -> None:
        """Finish every queued write, then end the thread (call `join()` after)."""
        self._queue.put(None)

    def run(self) -> None:
        stopping = False
        carried: _Op | None = None
        while not stopping:
            first = carried if carried is not None else self._queue.get()
            carried = None
            if first is None:
                break
            if first.alone:
                self._switch(first)
                self._resolve([first])
                continue
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                if nxt.alone:  # after this batch's commit
                    carried = nxt
                    break
                batch.append(nxt)
            self._run_batch(batch)
            self._resolve(batch)
        self._conn.close()

    def _switch(self, op: _Op) -> None:
        assert op.fn is not None
        try:
            new_conn, op.value = op.fn(self._conn)
        except sqlite3.Error as exc:
            op.ok, op.value = False, describe_sqlite_error(exc, self._path, "switch")
            return
        except Exception as exc:
            op.ok, op.value = False, exc
            return
        if new_conn is not None:
            self._conn.close()
            self._conn = new_conn

    def _run_batch(self, batch: list[_Op]) -> None:
        """Run `batch` in one transaction, leaving each op's outcome in `ok`/`value`."""
        try:
            self._transaction(batch)
        except (sqlite3.IntegrityError, ValueError, OverflowError) as exc:
            # A bad row, or a value SQLite cannot take (a string with surrogates, an int
            # beyond 64 bits): it must not sink the writes queued with it.
            self._rollback()
            if len(batch) > 1:
                for op in batch:
                    self._run_batch([op])
                return
            if isinstance(exc, sqlite3.IntegrityError):
                self._fail(batch, describe_sqlite_error(exc, self._path, "write to"))
            else:
                error = ValueError(f"cannot write to {self._path}: {exc}")
                batch[0].ok, batch[0].value = False, error
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
            rows = conn.executemany(*inline_nulls(sql, [op.params for op in group])).rowcount
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


class Readers:
    """A few reader threads, each with its own connection (made on first use), so one slow
    query (statistics over a long history) does not hold up the others."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], threads: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="agentcron-sqlite-read")
        self._connect = connect
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        #: Raised by `reconnect()`: each reader connects again before its next read.
        self._generation = 0

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.generation != self._generation:
            with self._lock:
                self._all.remove(conn)
            conn.close()
            conn = None
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.generation = self._generation
            with self._lock:
                self._all.append(conn)
        return conn

    def reconnect(self) -> None:
        """Make every reader open the file again (it was replaced) before its next read."""
        self._generation += 1

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
