"""When the file under an open `SqliteStore` is deleted or replaced.

An open SQLite connection keeps reading and writing the file it opened, even once that
file is deleted (an `rm -r data/` while the daemon runs) or another file takes its name (a
copy over it, or a new database the CLI created after the delete). Left alone, the daemon
goes on writing to a file nobody else sees, the CLI to another, and everything the daemon
wrote is gone when it stops. `SqliteStore.notice_data_loss` (asked by the scheduler at
each lease renewal) compares the file at the path with the one open and, in the writer's
thread between two transactions (`Writer.submit_switch`), so that no write is lost:

* deleted: the open database is written back to its path with SQLite's online backup
  (nothing is lost), and the store writes through the new file;
* replaced: the open database is saved beside it as `<name>.orphaned-<UTC stamp>` (the
  history it held), and the store moves to the file now at the path; the scheduler then
  writes its jobs and running runs back (`data_losses`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

__all__ = ["FileId", "Followed", "file_id", "follow_file"]

log = logging.getLogger("agentcron.store")

#: `(st_dev, st_ino)`: which file a path names.
FileId = tuple[int, int]
#: What `follow_file` did: wrote the deleted file back, or moved to its replacement.
Followed = Literal["written back", "replaced"]


def file_id(path: Path) -> FileId | None:
    """The file `path` names now, or None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def follow_file(
    conn: sqlite3.Connection,
    path: Path,
    reopen: Callable[[], sqlite3.Connection],
    now: datetime,
) -> tuple[sqlite3.Connection, Followed]:
    """Run in the writer's thread, outside a transaction: make `path` the database to write
    through again (see the module docstring); the new connection and what was done."""
    if not path.exists():
        restoring = path.with_name(f"{path.name}.restoring-{os.getpid()}")
        _copy(conn, restoring)
        try:
            os.link(restoring, path)  # never over a database made meanwhile
        except FileExistsError:
            pass  # made meanwhile: a replacement after all (below)
        else:
            _unlink(restoring)
            log.error(
                "%s was deleted while agentcron had it open; it was written back from the"
                " open connection (nothing was lost)",
                path,
            )
            return reopen(), "written back"
        _unlink(restoring)
    orphan = path.with_name(f"{path.name}.orphaned-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}")
    _copy(conn, orphan)
    new_conn = reopen()
    log.error(
        "%s was replaced by another file while agentcron had it open; the database it had"
        " open is saved as %s (its history), and it now uses the new file, writing its jobs"
        " back to it",
        path,
        orphan,
    )
    return new_conn, "replaced"


def _copy(conn: sqlite3.Connection, target: Path) -> None:
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        conn.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")
    finally:
        dst.close()


def _unlink(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            pass
