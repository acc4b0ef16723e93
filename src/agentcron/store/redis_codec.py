"""How `RedisStore` lays records out in values: JSON documents with ISO-8601 times.

A run's lease lives beside its document (hash field ``l``), so `run_from` takes both; a job's
schedule state (``{next_run, last_fire}``) lives in its own hash, so `job_from` does too.
Scores of sorted sets are microseconds since the epoch (`us`).

The readers (`*_from`) check what they read: a value that is not JSON, lacks a field or
holds a field of the wrong type (edited by hand, or written by something else) raises
`BadRecord` naming the problem, never another exception, so that the store can skip it.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from agentcron.clock import utc
from agentcron.models import AuditEntry, NodeHeartbeat, RunRecord, RunStatus, StoredJob

__all__ = ["BadRecord"]

log = logging.getLogger("agentcron.store.redis")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def us(dt: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive or out of range: ValueError)."""
    return (utc(dt) - _EPOCH) // _US


def iso(dt: datetime | None) -> str | None:
    """ISO-8601 with `dt`'s own offset (naive or out of range: ValueError)."""
    if dt is None:
        return None
    utc(dt)
    return dt.isoformat()


class BadRecord(ValueError):
    """A stored value this agentcron cannot read back (see the module docstring)."""


def dt(value: Any) -> datetime | None:
    """An aware datetime from its ISO-8601 text; None for none; `BadRecord` otherwise."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
        utc(parsed)
    except (TypeError, ValueError, OverflowError):
        raise BadRecord(f"not an aware ISO-8601 time: {str(value)[:80]!r}") from None
    return parsed


def _doc(data: bytes | str | None) -> dict[str, Any]:
    """A stored JSON object; `BadRecord` for anything else."""
    try:
        value = json.loads(data) if data is not None else None
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise BadRecord(f"not JSON: {_preview(data)}") from None
    if not isinstance(value, dict):
        raise BadRecord(f"not a JSON object: {_preview(data)}")
    return value


def _preview(data: bytes | str | None) -> str:
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _get(d: dict[str, Any], name: str, *kinds: type, optional: bool = False) -> Any:
    """`d[name]`, checked to be one of `kinds` (None allowed when `optional`)."""
    if name not in d:
        raise BadRecord(f"field {name!r} is missing")
    value = d[name]
    if value is None and optional:
        return None
    # bool is an int to Python; a stored true/false is no count.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise BadRecord(f"field {name!r} holds {type(value).__name__}: {str(value)[:80]!r}")
    return value


def _time(d: dict[str, Any], name: str, *, optional: bool = True) -> datetime | None:
    value = dt(_get(d, name, str, optional=optional))
    if value is None and not optional:
        raise BadRecord(f"field {name!r} is empty")
    return value


def dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def run_data(run: RunRecord) -> str:
    return dumps(
        {
            "run_id": run.run_id,
            "job_id": run.job_id,
            "scheduled_for": iso(run.scheduled_for),
            "status": str(run.status),
            "attempt": run.attempt,
            "started_at": iso(run.started_at),
            "finished_at": iso(run.finished_at),
            "error": run.error,
            "output_tail": run.output_tail,
            "node_id": run.node_id,
            "skip_reason": run.skip_reason,
            "fence": run.fence,
            "queue_job_id": run.queue_job_id,
        }
    )


def run_from(data: bytes | str, lease: bytes | str | None) -> RunRecord:
    d = _doc(data)
    try:
        lease_text = lease.decode() if isinstance(lease, bytes) else lease
        status = RunStatus(_get(d, "status", str))
    except ValueError as exc:  # UnicodeDecodeError included
        raise BadRecord(str(exc)) from None
    return RunRecord(
        run_id=_get(d, "run_id", str),
        job_id=_get(d, "job_id", str),
        scheduled_for=cast(datetime, _time(d, "scheduled_for", optional=False)),
        status=status,
        attempt=_get(d, "attempt", int),
        started_at=_time(d, "started_at"),
        finished_at=_time(d, "finished_at"),
        error=_get(d, "error", str, optional=True),
        output_tail=_get(d, "output_tail", str, optional=True),
        node_id=_get(d, "node_id", str, optional=True),
        skip_reason=_get(d, "skip_reason", str, optional=True),
        lease_expires_at=dt(lease_text),
        fence=_get(d, "fence", int),
        queue_job_id=_get(d, "queue_job_id", str, optional=True),
    )


def job_data(job: StoredJob) -> str:
    return dumps(
        {
            "definition": job.definition,
            "paused": job.paused,
            "pause_note": job.pause_note,
            "created_at": iso(job.created_at),
            "updated_at": iso(job.updated_at),
            "version": job.version,
        }
    )


def job_state(job: StoredJob) -> str:
    """The `{p}:jobstate` value of a job: its scheduling state."""
    return dumps({"next_run": iso(job.next_run), "last_fire": iso(job.last_fire)})


def job_from(job_id: str, data: bytes | str, state: bytes | str | None) -> StoredJob:
    """A stored job; `BadRecord` when its definition is unreadable. Unreadable scheduling
    state alone reads as none (the scheduler computes it again from the definition)."""
    d = _doc(data)
    job = StoredJob(
        id=job_id,
        definition=_get(d, "definition", dict),
        paused=_get(d, "paused", bool),
        pause_note=_get(d, "pause_note", str, optional=True),
        created_at=_time(d, "created_at"),
        updated_at=_time(d, "updated_at"),
        version=_get(d, "version", int),
    )
    if not state:
        return job
    try:
        s = _doc(state)
        return job.evolve(
            next_run=_time(s, "next_run"),
            last_fire=_time(s, "last_fire"),
        )
    except BadRecord as exc:
        log.error("Redis store: scheduling state of job %r ignored: %s", job_id, exc)
        return job


def heartbeat_data(heartbeat: NodeHeartbeat) -> str:
    return dumps(
        {
            "node_id": heartbeat.node_id,
            "sequence": heartbeat.sequence,
            "sent_at": iso(heartbeat.sent_at),
            "status": heartbeat.status,
            "host": heartbeat.host,
            "pid": heartbeat.pid,
            "version": heartbeat.version,
            "platform": heartbeat.platform,
            "started_at": iso(heartbeat.started_at),
            "interval_s": heartbeat.interval_s,
            "details": heartbeat.details,
        }
    )


def heartbeat_from(data: bytes | str) -> NodeHeartbeat:
    d = _doc(data)
    return NodeHeartbeat(
        node_id=_get(d, "node_id", str),
        sequence=_get(d, "sequence", int),
        sent_at=cast(datetime, _time(d, "sent_at", optional=False)),
        status=_get(d, "status", str),
        host=_get(d, "host", str),
        pid=_get(d, "pid", int),
        version=_get(d, "version", str),
        platform=_get(d, "platform", str),
        started_at=_time(d, "started_at"),
        interval_s=_get(d, "interval_s", int, float),
        details=_get(d, "details", dict),
    )


def audit_data(entry: AuditEntry) -> str:
    return dumps(
        {
            "job_id": entry.job_id,
            "action": entry.action,
            "actor": entry.actor,
            "at": entry.at.isoformat(),
            "before": entry.before,
            "after": entry.after,
        }
    )


def audit_from(data: bytes | str) -> AuditEntry:
    d = _doc(data)
    return AuditEntry(
        job_id=_get(d, "job_id", str),
        action=_get(d, "action", str),
        actor=_get(d, "actor", str),
        at=cast(datetime, _time(d, "at", optional=False)),
        before=_get(d, "before", dict, optional=True),
        after=_get(d, "after", dict, optional=True),
    )
