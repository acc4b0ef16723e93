"""How `RedisStore` lays records out in values: JSON documents with ISO-8601 times.

A run's lease lives beside its document (hash field ``l``), so `run_from` takes both; a job's
schedule state (``{next_run, last_fire}``) lives in its own hash, so `job_from` does too.
Scores of sorted sets are microseconds since the epoch (`us`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from agentcron.clock import utc
from agentcron.models import AuditEntry, NodeHeartbeat, RunRecord, RunStatus, StoredJob

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


def dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


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
    d = json.loads(data)
    lease_text = lease.decode() if isinstance(lease, bytes) else lease
    return RunRecord(
        run_id=d["run_id"],
        job_id=d["job_id"],
        scheduled_for=datetime.fromisoformat(d["scheduled_for"]),
        status=RunStatus(d["status"]),
        attempt=d["attempt"],
        started_at=dt(d["started_at"]),
        finished_at=dt(d["finished_at"]),
        error=d["error"],
        output_tail=d["output_tail"],
        node_id=d["node_id"],
        skip_reason=d["skip_reason"],
        lease_expires_at=dt(lease_text),
        fence=d["fence"],
        queue_job_id=d["queue_job_id"],
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
    d = json.loads(data)
    s = json.loads(state) if state else {}
    return StoredJob(
        id=job_id,
        definition=d["definition"],
        paused=d["paused"],
        pause_note=d["pause_note"],
        next_run=dt(s.get("next_run")),
        last_fire=dt(s.get("last_fire")),
        created_at=dt(d["created_at"]),
        updated_at=dt(d["updated_at"]),
        version=d["version"],
    )


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
    d = json.loads(data)
    d["sent_at"] = datetime.fromisoformat(d["sent_at"])
    d["started_at"] = dt(d["started_at"])
    return NodeHeartbeat(**d)


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
    d = json.loads(data)
    d["at"] = datetime.fromisoformat(d["at"])
    return AuditEntry(**d)
