"""The SQL of `SqliteQueue`: its schema and its statements (values are always bound, never
interpolated; the only f-strings splice in the constant `ID`)."""

from __future__ import annotations

SCHEMA_VERSION = 1
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS queue_schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS queue_jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        id TEXT,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        rank INTEGER NOT NULL DEFAULT 0,
        at_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 1,
        attempts_made INTEGER NOT NULL DEFAULT 0,
        stalled INTEGER NOT NULL DEFAULT 0,
        backoff TEXT,
        keep_completed INTEGER NOT NULL DEFAULT -1,
        keep_failed INTEGER NOT NULL DEFAULT -1,
        token TEXT,
        progress REAL NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT,
        created_ms INTEGER NOT NULL,
        finished_ms INTEGER
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS queue_jobs_id ON queue_jobs (queue, id) WHERE id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS queue_jobs_next ON queue_jobs (queue, state, rank, at_ms)",
    """CREATE TABLE IF NOT EXISTS queue_meta (
        queue TEXT PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        window_start_ms INTEGER NOT NULL DEFAULT 0,
        window_count INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE IF NOT EXISTS queue_repeatables (
        queue TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        cron TEXT NOT NULL,
        tz TEXT NOT NULL,
        PRIMARY KEY (queue, key)
    )""",
)

#: A job's id: its custom id, else its row number (never reused: AUTOINCREMENT), as BullMQ.
ID = "coalesce(id, CAST(seq AS TEXT))"
INSERT = (
    "INSERT INTO queue_jobs (queue, id, name, data, state, priority, rank, at_ms, attempts,"
    " backoff, keep_completed, keep_failed, created_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (queue, id) WHERE id IS NOT NULL DO NOTHING"
)
CLAIM = (
    "UPDATE queue_jobs SET state='active', rank=0, token=?, at_ms=?, attempts_made=attempts_made+1"
    " WHERE seq IN (SELECT seq FROM queue_jobs WHERE queue=? AND state='waiting'"
    " ORDER BY rank, at_ms, seq LIMIT ?)"
    f" RETURNING seq, {ID}, name, data, priority, attempts, attempts_made, backoff,"
    " keep_completed, keep_failed"
)
PROMOTE = (
    "UPDATE queue_jobs SET state='waiting', rank=priority"
    " WHERE queue=? AND state='delayed' AND rank=0 AND at_ms<=?"
)
COMPLETE = (
    "UPDATE queue_jobs SET state='completed', at_ms=?, finished_ms=?, result=?, token=NULL"
    " WHERE seq=? AND token=?"
)
FAIL = (
    "UPDATE queue_jobs SET state='failed', at_ms=?, finished_ms=?, error=?, token=NULL"
    " WHERE seq=? AND token=?"
)
#: Parameters: state, state again (numbered placeholders such as `?1` with a sequence are
#: deprecated since Python 3.12 and refused from 3.14), at_ms, error, seq, token.
RETRY = (
    "UPDATE queue_jobs SET state=?, rank=CASE WHEN ?='waiting' THEN priority ELSE 0 END,"
    " at_ms=?, error=?, token=NULL WHERE seq=? AND token=?"
)
DELETE_OWNED = "DELETE FROM queue_jobs WHERE seq=? AND token=?"
TRIM = (
    "DELETE FROM queue_jobs WHERE seq IN (SELECT seq FROM queue_jobs WHERE queue=? AND state=?"
    " AND rank=0 ORDER BY at_ms DESC, seq DESC LIMIT -1 OFFSET ?)"
)
COLUMNS = (
    f"{ID}, name, data, state, priority, attempts, attempts_made, progress, result, error,"
    " created_ms, finished_ms"
)
#: `SqliteQueue.jobs`: the order of each state, each served by the index ``queue_jobs_next``
#: (its last key is the rowid, ``seq``). Jobs out of the waiting state have ``rank`` 0.
LIST_ORDER = {
    "waiting": "rank, at_ms, seq",  # the claim order
    "delayed": "at_ms, seq",  # due time
    "active": "at_ms, seq",  # lease expiry
    "completed": "at_ms DESC, seq DESC",  # finish time, newest first
    "failed": "at_ms DESC, seq DESC",
}
LIST = (
    f"SELECT {COLUMNS} FROM queue_jobs WHERE queue=? AND state=?{{rank}}"
    " ORDER BY {order} LIMIT ? OFFSET ?"
)
