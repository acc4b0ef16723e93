"""`SqliteStore`'s run log: the statements that record runs, queries, statistics, pruning
and the takeover of runs whose lease expired.

Statistics are aggregated in SQL, computed as `run_stats.stats_from_runs` computes them.
Functions of a connection run in a reader thread or, for writes, in the writer's transaction
(see `sqlite_writer`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from agentcron.models import RunQuery, RunRecord, RunStats, RunStatus
from agentcron.store.sqlite_codec import (
    RUN_COLUMNS,
    from_us,
    inline_nulls,
    req_dt,
    run_from_row,
    run_params,
    run_update_params,
    to_us,
)

#: Statuses a run is usually first recorded with (see `SqliteStore.record_run`).
FIRST_STATUSES = frozenset({RunStatus.scheduled, RunStatus.running, RunStatus.skipped})
_FAILED_SQL = "('failed', 'timed_out', 'interrupted')"
_ACTIVE_SQL = "('scheduled', 'running')"
UPSERT_RUN = (
    f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
UPDATE_RUN = (
    "UPDATE runs SET status = ?, attempt = ?, started_us = ?, finished_us = ?, error = ?, "
    "output_tail = ?, node_id = ?, skip_reason = ?, lease_expires_us = ?, fence = ?, "
    "queue_job_id = ? WHERE run_id = ? AND job_id = ? AND scheduled_for_us = ? AND fence <= ?"
)
_PRUNE_BEYOND = (
    "DELETE FROM runs WHERE run_id IN (SELECT run_id FROM (SELECT run_id, row_number() OVER "
    "(PARTITION BY job_id ORDER BY scheduled_for_us DESC, run_id DESC) AS rank "
    f"FROM runs WHERE status NOT IN {_ACTIVE_SQL}) WHERE rank > ?)"
)


def insert_runs(conn: sqlite3.Connection, records: Sequence[RunRecord]) -> None:
    """Record each of `records` (new runs, usually) with `UPSERT_RUN`, in order."""
    if records:
        conn.executemany(*inline_nulls(UPSERT_RUN, [run_params(run) for run in records]))


def record_runs(conn: sqlite3.Connection, records: Sequence[RunRecord]) -> list[bool]:
    """Record each of `records` in order, as `SqliteStore.record_run` does (update in place,
    else upsert); whether each was recorded (False: refused by fencing)."""
    updates = [run_update_params(run) for run in records]
    conn.execute("SAVEPOINT record_runs")
    # All at once first: when each UPDATE changed its row, none needed the upsert.
    if conn.executemany(*inline_nulls(UPDATE_RUN, updates)).rowcount == len(updates):
        conn.execute("RELEASE record_runs")
        return [True] * len(updates)
    conn.execute("ROLLBACK TO record_runs")
    conn.execute("RELEASE record_runs")
    cursor = conn.cursor()
    recorded = []
    for run, update in zip(records, updates, strict=True):
        changed = cursor.execute(UPDATE_RUN, update).rowcount
        if changed == 0:
            changed = cursor.execute(UPSERT_RUN, run_params(run)).rowcount
        recorded.append(changed == 1)
    return recorded


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


def list_query(query: RunQuery) -> tuple[str, list[Any]]:
    """The SELECT (and its parameters) of one page of `query`, newest first."""
    where, params = _where(query)
    sql = (
        f"SELECT {RUN_COLUMNS} FROM runs{where} "
        "ORDER BY scheduled_for_us DESC, run_id DESC LIMIT ? OFFSET ?"
    )
    params += [max(0, query.limit), max(0, query.offset)]
    return sql, params


def count_query(query: RunQuery) -> tuple[str, list[Any]]:
    where, params = _where(query)
    return f"SELECT count(*) FROM runs{where}", params


def get_run(conn: sqlite3.Connection, run_id: str) -> RunRecord | None:
    row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else run_from_row(row)


_MAX_SQLITE_INT = 2**63 - 1


def prune_runs(conn: sqlite3.Connection, keep_per_job: int | None, cutoff_us: int | None) -> int:
    """Delete final runs beyond the newest `keep_per_job` of each job, then those (and the
    claims) scheduled before `cutoff_us`; the number of runs deleted."""
    deleted = 0
    # Beyond-the-newest first: deleting old rows after it cannot change those ranks.
    if keep_per_job is not None:
        # SQLite's integers stop at 2**63 - 1; keeping that many runs already keeps all.
        keep = min(keep_per_job, _MAX_SQLITE_INT)
        deleted += conn.execute(_PRUNE_BEYOND, (keep,)).rowcount
    if cutoff_us is not None:
        deleted += conn.execute(
            f"DELETE FROM runs WHERE status NOT IN {_ACTIVE_SQL} AND scheduled_for_us < ?",
            (cutoff_us,),
        ).rowcount
        conn.execute("DELETE FROM fire_claims WHERE scheduled_for_us < ?", (cutoff_us,))
    return deleted


def interrupt_expired(conn: sqlite3.Connection, now_us: int) -> list[RunRecord]:
    """Mark running runs whose lease expired by `now_us` interrupted (fence raised); the
    runs as they now are, oldest first."""
    # Atomic across processes: the writer holds the file's write lock (BEGIN IMMEDIATE).
    # No ORDER BY in SQL: it would steer the planner away from the partial lease index.
    rows = conn.execute(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE status = 'running' AND lease_expires_us <= ?",
        (now_us,),
    ).fetchall()
    rows.sort(key=lambda row: (row[2], row[0]))
    taken = []
    for row in rows:
        run = run_from_row(row).interrupted(req_dt(now_us))
        conn.execute(
            "UPDATE runs SET status = 'interrupted', fence = fence + 1, finished_us = ?, "
            "lease_expires_us = NULL, error = ? WHERE run_id = ?",
            (now_us, run.error, row[0]),
        )
        taken.append(run)
    return taken


def run_stats(conn: sqlite3.Connection, job_id: str) -> RunStats:
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
