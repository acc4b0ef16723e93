"""The SQLite schema as numbered migrations, and the checks that tell what a file is.

Each `NNNN_name.sql` file in this package moves the schema from version `NNNN - 1` to `NNNN`
and ends with `PRAGMA user_version = NNNN;` (checked when applied). `PRAGMA application_id`
marks the file as an agentcron database, so a foreign SQLite file is refused before anything
is written to it. Migrations are applied in order inside the caller's write transaction.

Never edit a released migration: add the next number.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from agentcron.store.base import StoreError

__all__ = [
    "APPLICATION_ID",
    "LATEST_VERSION",
    "MIGRATIONS",
    "DatabaseIdentity",
    "Migration",
    "apply_pending",
    "check_identity",
    "check_sqlite_header",
    "read_identity",
    "split_statements",
]

#: `PRAGMA application_id` of an agentcron database: b"acr1" as a big-endian integer.
APPLICATION_ID = 0x61637231
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: `sql` moves the schema from `version - 1` to `version`."""

    version: int
    name: str
    sql: str


def _load() -> tuple[Migration, ...]:
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        raise RuntimeError(f"agentcron migrations are not numbered 1..n: {[m.name for m in found]}")
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _load()
#: The schema version this code creates and understands.
LATEST_VERSION: int = MIGRATIONS[-1].version


def split_statements(sql: str) -> list[str]:
    """Split a script into complete statements (triggers with inner `;` stay whole)."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            if statement.strip(";").strip() and not _only_comments(statement):
                statements.append(statement)
            pending = ""
    if pending.strip() and not _only_comments(pending):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {pending!r}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not ln.strip() or ln.strip().startswith("--") for ln in text.splitlines())


#: Schema objects other agentcron components create in the same file before the store's
#: schema may exist (`agentcron.queue.sqlite` keeps its tables under `queue_`); SQLite's own
#: objects (`sqlite_sequence`, autoindexes) are never foreign.
_SHARED_PREFIXES = ("queue_", "sqlite_")


@dataclass(frozen=True, slots=True)
class DatabaseIdentity:
    """What the header and catalogue of an SQLite file say about it."""

    application_id: int
    user_version: int
    object_count: int
    #: Objects that neither the store nor another agentcron component would have made.
    foreign_object_count: int = 0

    @property
    def is_empty(self) -> bool:
        """No store schema and nothing foreign (maybe the queue's tables): ours to migrate."""
        return (
            self.application_id == 0 and self.user_version == 0 and self.foreign_object_count == 0
        )


def check_sqlite_header(path: Path) -> None:
    """Raise `StoreError` when `path` exists, is not empty and is not an SQLite file.

    Invariant: the file is read through SQLite, never with a plain file handle. Closing any
    handle of a file drops every POSIX lock the process holds on it, those of its open
    SQLite connections too (SQLite's own opens know about each other; Python's `open()`
    does not). The next process to close its connection then finds the database unused,
    checkpoints it and deletes the WAL that this process's connections still write to:
    everything they write after that is lost to every other process."""
    if not path.exists():
        return
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a database file; pass the file's path")
    if path.stat().st_size == 0:
        return
    try:
        # `immutable`: no -wal or -shm file is made for the check (it reads the main file).
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_NOTADB:
            return  # locked, unreadable, ...: the open that follows reports it
        raise StoreError(
            f"{path} is not an SQLite database; point the store at the agentcron database "
            "or restore a backup with `agentcron db restore FILE`"
        ) from None


def read_identity(conn: sqlite3.Connection) -> DatabaseIdentity:
    """Read `application_id`, `user_version` and the number of schema objects, from one
    snapshot of the file.

    Invariant: the three reads are one read transaction (unless the caller's transaction
    already holds them together). Read one by one, a process creating the file at the
    same moment could commit in between: an empty `application_id` beside its 16 new
    tables, and this opener refused a fresh agentcron database as foreign."""
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN")
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        names = [str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")]
    finally:
        if own and conn.in_transaction:
            conn.execute("COMMIT")
    foreign = sum(1 for name in names if not name.startswith(_SHARED_PREFIXES))
    return DatabaseIdentity(int(app_id), int(version), len(names), foreign)


def check_identity(identity: DatabaseIdentity, label: str) -> None:
    """Raise `StoreError` unless the file is empty or an agentcron database we understand."""
    if identity.is_empty:
        return
    if identity.application_id != APPLICATION_ID:
        raise StoreError(
            f"{label} is an SQLite database but not an agentcron database (application_id "
            f"{identity.application_id:#x}, {identity.object_count} schema objects); use another "
            "file or data directory, or restore an agentcron backup"
        )
    if identity.user_version > LATEST_VERSION:
        raise StoreError(
            f"{label} was created by a newer agentcron (schema {identity.user_version} > "
            f"{LATEST_VERSION}); upgrade agentcron or restore a backup"
        )


def apply_pending(conn: sqlite3.Connection, label: str) -> tuple[int, int]:
    """Apply every migration above the file's version; returns `(before, after)` versions.

    Must run inside a write transaction (`BEGIN IMMEDIATE`) that the caller commits, so a
    failure leaves the file at its old version and a concurrent opener waits instead of
    migrating twice.
    """
    identity = read_identity(conn)
    check_identity(identity, label)
    before = identity.user_version
    for migration in MIGRATIONS[before:]:
        for statement in split_statements(migration.sql):
            conn.execute(statement)
        reached = conn.execute("PRAGMA user_version").fetchone()[0]
        if reached != migration.version:
            raise RuntimeError(
                f"migration {migration.name} left user_version at {reached}, "
                f"expected {migration.version}"
            )
    return before, LATEST_VERSION
