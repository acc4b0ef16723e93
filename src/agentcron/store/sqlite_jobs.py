"""`SqliteStore`'s job definitions and their audit trail, as functions of a connection.

The write functions run inside the writer's transaction (see `sqlite_writer`), so each one's
read-then-write is atomic, across processes too; every change of a job appends its audit
entry in the same transaction.
"""

from __future__ import annotations

import gc
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from agentcron.models import AuditEntry, ConflictPolicy, StoredJob
from agentcron.store.base import JobConflictError
from agentcron.store.sqlite_codec import (
    AUDIT_COLUMNS,
    JOB_COLUMNS,
    audit_from_row,
    dumps,
    job_from_row,
    opt_us,
)


def select_job(conn: sqlite3.Connection, job_id: str) -> StoredJob | None:
    row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else job_from_row(row)


def _audit(
    conn: sqlite3.Connection,
    job_id: str,
    action: str,
    actor: str,
    at_us: int,
    before: str | None,
    after: str | None,
) -> None:
    """Append one audit entry; `before`/`after` are the definitions as JSON text."""
    conn.execute(
        f"INSERT INTO job_audit ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (job_id, action, actor, at_us, before, after),
    )


def save_job(
    conn: sqlite3.Connection,
    job: StoredJob,
    definition: dict[str, Any],
    text: str,
    *,
    actor: str,
    conflict: ConflictPolicy,
    now_us: int,
) -> StoredJob:
    """Insert `job` with `definition` (normalised as it reads back; `text` is its JSON), or
    settle the conflict.

    A new job is returned as inserted, not read back: that second query, and parsing its
    definition again, were a third of storing 100,000 new jobs."""
    old = select_job(conn, job.id)
    if old is None:
        row = (job.id, text, int(job.paused), job.pause_note, opt_us(job.next_run),
               opt_us(job.last_fire), opt_us(job.created_at) or now_us, now_us, 1)  # fmt: skip
        conn.execute(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        _audit(conn, job.id, "added", actor, now_us, None, text)
        return job_from_row(row, definition)
    if conflict == "keep":
        return old
    if conflict == "error":
        raise JobConflictError(f"a job with id {job.id!r} already exists")
    if old.definition == definition:
        return old
    conn.execute(
        "UPDATE jobs SET definition = ?, updated_us = ?, version = version + 1 WHERE id = ?",
        (text, now_us, job.id),
    )
    _audit(conn, job.id, "updated", actor, now_us, dumps(old.definition), text)
    return select_job(conn, job.id)  # type: ignore[return-value]


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


def list_jobs(conn: sqlite3.Connection) -> list[StoredJob]:
    rows = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY id").fetchall()
    with _gc_paused():
        # One JSON document for all definitions parses about twice as fast as one
        # each, which is most of the start-up time with many jobs.
        definitions = json.loads("[" + ",".join(row[1] for row in rows) + "]")
        return [job_from_row(row, d) for row, d in zip(rows, definitions, strict=True)]


def delete_job(conn: sqlite3.Connection, job_id: str, *, actor: str, now_us: int) -> bool:
    """Delete the job with its runs and claims; False if there is none."""
    old = select_job(conn, job_id)
    if old is None:
        return False
    conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    conn.execute("DELETE FROM runs WHERE job_id = ?", (job_id,))
    conn.execute("DELETE FROM fire_claims WHERE job_id = ?", (job_id,))
    _audit(conn, job_id, "removed", actor, now_us, dumps(old.definition), None)
    return True


def set_paused(
    conn: sqlite3.Connection,
    job_id: str,
    paused: bool,
    *,
    note: str | None,
    actor: str,
    now_us: int,
) -> StoredJob | None:
    changed = conn.execute(
        "UPDATE jobs SET paused = ?, pause_note = ?, updated_us = ? WHERE id = ?",
        (int(paused), note if paused else None, now_us, job_id),
    ).rowcount
    if not changed:
        return None
    _audit(conn, job_id, "paused" if paused else "resumed", actor, now_us, None, None)
    return select_job(conn, job_id)


def list_audit(conn: sqlite3.Connection, job_id: str | None, limit: int) -> list[AuditEntry]:
    if job_id is None:
        sql = f"SELECT {AUDIT_COLUMNS} FROM job_audit ORDER BY id DESC LIMIT ?"
        rows = conn.execute(sql, (max(0, limit),)).fetchall()
    else:
        sql = f"SELECT {AUDIT_COLUMNS} FROM job_audit WHERE job_id = ? ORDER BY id DESC LIMIT ?"
        rows = conn.execute(sql, (job_id, max(0, limit))).fetchall()
    return [audit_from_row(r) for r in rows]
