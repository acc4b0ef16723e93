"""Opening `SqliteStore`'s file: connection pragmas, the writer's schema check and migration,
and driver errors turned into `StoreError`s that name the file and what to do."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Literal

from agentcron.store import migrations
from agentcron.store.base import StoreError

Synchronous = Literal["NORMAL", "FULL"]
SYNC_PRAGMA: dict[str, str] = {
    "NORMAL": "PRAGMA synchronous = NORMAL",
    "FULL": "PRAGMA synchronous = FULL",
}
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


def describe_sqlite_error(exc: sqlite3.Error, path: Path | str, action: str) -> StoreError:
    """Turn a driver error into a `StoreError` naming the file and what to do."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    what = f"{action} {path}"
    if is_busy(exc):
        # (No setting makes the wait longer: the advice is what a user can do.)
        hint = (
            "it is locked by another process (a long write such as a VACUUM or a prune, or a"
            " process stuck in a transaction); try again when it is done, or stop that process"
        )
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
        hint = "check the file with `agentcron db check`"
    return StoreError(f"cannot {what}: {exc}; {hint}")


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """An autocommit connection usable from any thread (each is used by one at a time)."""
    conn = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    conn.execute("PRAGMA foreign_keys = ON")
    # 16 MiB of page cache per connection (SQLite's default is 2 MiB): the run indexes of a
    # busy history stay in memory; sorts for statistics stay off disk.
    conn.execute("PRAGMA cache_size = -16384")
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def connect_reader(
    path: Path, busy_timeout_s: float, synchronous: Synchronous
) -> sqlite3.Connection:
    conn = connect(path, busy_timeout_s)
    conn.execute(SYNC_PRAGMA[synchronous])
    conn.execute("PRAGMA query_only = ON")
    return conn


def check_readable(path: Path, busy_timeout_s: float) -> None:
    """For a read-only store: `path` is an agentcron database of the current schema.
    Nothing is written and no write lock is taken. Raises `StoreError`."""
    if not path.is_file():
        raise StoreError(
            f"no database at {path}; point at the file `agentcron run` keeps (--data-dir)"
        )
    migrations.check_sqlite_header(path)
    try:
        conn = connect(path, busy_timeout_s)
        try:
            identity = migrations.read_identity(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise describe_sqlite_error(exc, path, "open") from exc
    migrations.check_identity(identity, str(path))
    if identity.user_version < migrations.LATEST_VERSION:
        raise StoreError(
            f"{path} has schema version {identity.user_version}, this agentcron reads "
            f"{migrations.LATEST_VERSION}; run `agentcron db migrate` (or start "
            "`agentcron run`) first"
        )


def open_writer(
    path: Path, busy_timeout_s: float, synchronous: Synchronous
) -> tuple[sqlite3.Connection, tuple[int, int]]:
    """The write connection, with the schema created or migrated; and the `(before, after)`
    schema versions. Raises `StoreError`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory of {path}: {exc}; choose a writable data directory"
        ) from exc
    migrations.check_sqlite_header(path)
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            conn = connect(path, busy_timeout_s)
        except sqlite3.Error as exc:
            raise describe_sqlite_error(exc, path, "open") from exc
        try:
            return conn, _prepare_writer(conn, path, synchronous)
        except sqlite3.Error as exc:
            conn.close()
            if is_busy(exc) and time.monotonic() < deadline:
                # SQLite answers "busy" at once, without its busy handler, where waiting
                # could deadlock: switching a new file to WAL, or a read lock asking for
                # the write lock, while another process creates the same file. Two
                # `agentcron worker`s started together on a new data directory: one
                # failed with "database is locked" a third of the time.
                time.sleep(_BUSY_RETRY_S)  # a real file lock held by another process
                continue
            raise describe_sqlite_error(exc, path, "open") from exc
        except BaseException:
            conn.close()
            raise


#: Wait between attempts to open a file another process is creating (`open_writer`).
_BUSY_RETRY_S = 0.02


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether `exc` says another connection holds the lock it needed (busy or locked)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in (_BUSY, _LOCKED)


def _prepare_writer(
    conn: sqlite3.Connection, path: Path, synchronous: Synchronous
) -> tuple[int, int]:
    # Identity is checked before the first write so a foreign or newer file is untouched.
    migrations.check_identity(migrations.read_identity(conn), str(path))
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(
            f"cannot open {path}: SQLite refused WAL mode (got {mode!r}); put the "
            "database on a local file system"
        )
    conn.execute(SYNC_PRAGMA[synchronous])
    # Checkpoint (copy the WAL into the database, with fsyncs) every 4,000 pages instead of
    # SQLite's 1,000: a busy run log commits many small batches; about 10 % more writes/s.
    conn.execute("PRAGMA wal_autocheckpoint = 4000")
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrated = migrations.apply_pending(conn, str(path))
        conn.execute("COMMIT")
        return migrated
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
