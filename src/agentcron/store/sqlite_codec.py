"""How `SqliteStore` lays records out in rows: times, JSON, column lists and row codecs.

Times are stored as integer microseconds since the epoch (UTC) and read back aware; JSON is
compact. Each `*_COLUMNS` list is the column order its `*_from_row` reads and its
parameters are written in.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from agentcron.clock import utc
from agentcron.models import AuditEntry, NodeHeartbeat, RunRecord, RunStatus, StoredJob

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RUN_COLUMNS = (
    "run_id, job_id, scheduled_for_us, status, attempt, started_us, finished_us, error, "
    "output_tail, node_id, skip_reason, lease_expires_us, fence, queue_job_id"
)
JOB_COLUMNS = (
    "id, definition, paused, pause_note, next_run_us, last_fire_us, created_us, updated_us, version"
)
HEARTBEAT_COLUMNS = (
    "node_id, sequence, sent_us, status, host, pid, version, platform, started_us, "
    "interval_s, details"
)
AUDIT_COLUMNS = "job_id, action, actor, at_us, before, after"


def to_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch (UTC) of an aware datetime (naive: ValueError)."""
    if dt.tzinfo is not UTC:
        dt = utc(dt)
    since = dt - _EPOCH  # its fields, not `// timedelta`: ~20 % faster, several per fire
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def opt_us(dt: datetime | None) -> int | None:
    return None if dt is None else to_us(dt)


def from_us(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=us)


def req_dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def loads_opt(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def run_params(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id, run.job_id, to_us(run.scheduled_for), str(run.status), run.attempt,
        opt_us(run.started_at), opt_us(run.finished_at), run.error, run.output_tail,
        run.node_id, run.skip_reason, opt_us(run.lease_expires_at), run.fence, run.queue_job_id,
    )  # fmt: skip


def run_update_params(run: RunRecord) -> tuple[Any, ...]:
    """`sqlite_runs.UPDATE_RUN`'s parameters: the fields it sets, then the run's key and fence."""
    return (
        str(run.status), run.attempt, opt_us(run.started_at), opt_us(run.finished_at),
        run.error, run.output_tail, run.node_id, run.skip_reason, opt_us(run.lease_expires_at),
        run.fence, run.queue_job_id, run.run_id, run.job_id, to_us(run.scheduled_for), run.fence,
    )  # fmt: skip


def inline_nulls(sql: str, rows: Sequence[Sequence[Any]]) -> tuple[str, list[Sequence[Any]]]:
    """`sql` and `rows` for one `executemany`, with each parameter that is None in every row
    written into the SQL as NULL instead. Python's sqlite3 binds None through its adapter
    lookup (~0.3 µs a value, ten times an int), and a run record holds five or more.

    Every `?` in `sql` must be a parameter, in order."""
    columns = list(zip(*rows, strict=True))
    # Only a column that starts with None can be all None: count() is slow on the others.
    nulls = tuple(col[0] is None and col.count(None) == len(col) for col in columns)
    if not any(nulls) or all(nulls):  # all: no row would be left to run
        return sql, list(rows)
    kept = [col for col, null in zip(columns, nulls, strict=True) if not null]
    return _with_nulls(sql, nulls), list(zip(*kept, strict=True))


@lru_cache(maxsize=64)
def _with_nulls(sql: str, nulls: tuple[bool, ...]) -> str:
    """`sql` with its n-th `?` replaced by NULL where `nulls[n]`."""
    head, *tails = sql.split("?")
    if len(tails) != len(nulls):
        raise ValueError(f"{len(nulls)} parameters for {len(tails)} placeholders in {sql!r}")
    return head + "".join(
        ("NULL" if null else "?") + tail for null, tail in zip(nulls, tails, strict=True)
    )


def run_from_row(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=row[0], job_id=row[1], scheduled_for=req_dt(row[2]), status=RunStatus(row[3]),
        attempt=row[4], started_at=from_us(row[5]), finished_at=from_us(row[6]), error=row[7],
        output_tail=row[8], node_id=row[9], skip_reason=row[10],
        lease_expires_at=from_us(row[11]), fence=row[12], queue_job_id=row[13],
    )  # fmt: skip


def job_from_row(row: Sequence[Any], definition: dict[str, Any] | None = None) -> StoredJob:
    return StoredJob(
        id=row[0], definition=json.loads(row[1]) if definition is None else definition,
        paused=bool(row[2]), pause_note=row[3],
        next_run=from_us(row[4]), last_fire=from_us(row[5]), created_at=from_us(row[6]),
        updated_at=from_us(row[7]), version=row[8],
    )  # fmt: skip


def heartbeat_params(hb: NodeHeartbeat) -> tuple[Any, ...]:
    return (
        hb.node_id, hb.sequence, to_us(hb.sent_at), hb.status, hb.host, hb.pid, hb.version,
        hb.platform, opt_us(hb.started_at), hb.interval_s, dumps(hb.details),
    )  # fmt: skip


def heartbeat_from_row(row: Sequence[Any]) -> NodeHeartbeat:
    return NodeHeartbeat(
        node_id=row[0], sequence=row[1], sent_at=req_dt(row[2]), status=row[3], host=row[4],
        pid=row[5], version=row[6], platform=row[7], started_at=from_us(row[8]),
        interval_s=row[9], details=json.loads(row[10]),
    )  # fmt: skip


def audit_from_row(r: Sequence[Any]) -> AuditEntry:
    return AuditEntry(
        job_id=r[0],
        action=r[1],
        actor=r[2],
        at=req_dt(r[3]),
        before=loads_opt(r[4]),
        after=loads_opt(r[5]),
    )
