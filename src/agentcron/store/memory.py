"""`MemoryStore`: the reference implementation of `Store`, kept in process memory.

The default of the Python API (`Scheduler()` without a store) and the fake used by unit tests.
Nothing survives the process; use `sqlite:///...` for durability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from agentcron.models import (
    AuditEntry,
    ConflictPolicy,
    FireStart,
    NodeHeartbeat,
    RunQuery,
    RunRecord,
    RunStats,
    RunStatus,
    StoredJob,
)
from agentcron.store.base import JobConflictError

__all__ = ["MemoryStore"]

_FAILED = (RunStatus.failed, RunStatus.timed_out, RunStatus.interrupted)


def _now() -> datetime:
    # Only stamps audit/creation times; scheduling decisions never read it.
    return datetime.now(UTC)


def _sort_key(run: RunRecord) -> tuple[datetime, str]:
    return (run.scheduled_for, run.run_id)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def stats_from_runs(job_id: str, runs: list[RunRecord]) -> RunStats:
    """`RunStats` computed from a job's runs, newest first (for stores without SQL)."""
    finished = [r for r in runs if r.status.is_final and r.status != RunStatus.skipped]
    consecutive = 0
    for run in finished:
        if run.status not in _FAILED:
            break
        consecutive += 1
    durations = sorted(d for r in finished if (d := r.duration_s) is not None)
    successes = [r for r in runs if r.status == RunStatus.succeeded]
    failures = [r for r in runs if r.status in _FAILED]
    return RunStats(
        job_id=job_id,
        total=len(runs),
        succeeded=len(successes),
        failed=len(failures),
        skipped=sum(1 for r in runs if r.status == RunStatus.skipped),
        consecutive_failures=consecutive,
        last_success=max((r.finished_at or r.scheduled_for for r in successes), default=None),
        last_failure=max((r.finished_at or r.scheduled_for for r in failures), default=None),
        p50_duration_s=percentile(durations, 0.50),
        p95_duration_s=percentile(durations, 0.95),
    )


class MemoryStore:
    """All `Store` operations on dicts; see `agentcron.store.base` for the contract."""

    url = "memory://"

    def __init__(self) -> None:
        self._jobs: dict[str, StoredJob] = {}
        self._runs: dict[str, RunRecord] = {}
        self._claims: dict[tuple[str, datetime], str] = {}
        self._state: dict[str, str] = {}
        self._nodes: dict[str, NodeHeartbeat] = {}
        self._audit: list[AuditEntry] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- jobs ----------------------------------------------------------------------------
    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        now = _now()  # one datetime for the job's stamps and its audit entry (memory)
        old = self._jobs.get(job.id)
        if old is None:
            # Built directly: the hot path of adding many jobs (`replace` costs ~4x more).
            stored = StoredJob(
                id=job.id,
                definition=job.definition,
                paused=job.paused,
                pause_note=job.pause_note,
                next_run=job.next_run,
                last_fire=job.last_fire,
                created_at=job.created_at or now,
                updated_at=now,
                version=1,
            )
            self._jobs[job.id] = stored
            self._audit_entry(job.id, "added", actor, None, stored.definition, now)
            return stored
        if conflict == "keep":
            return old
        if conflict == "error":
            raise JobConflictError(f"a job with id {job.id!r} already exists")
        if old.definition == job.definition:
            return old
        stored = old.evolve(definition=job.definition, updated_at=now, version=old.version + 1)
        self._jobs[job.id] = stored
        self._audit_entry(job.id, "updated", actor, old.definition, stored.definition, now)
        return stored

    async def get_job(self, job_id: str) -> StoredJob | None:
        return self._jobs.get(job_id)

    async def list_jobs(self) -> list[StoredJob]:
        return [self._jobs[k] for k in sorted(self._jobs)]

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        old = self._jobs.pop(job_id, None)
        if old is None:
            return False
        self._runs = {k: r for k, r in self._runs.items() if r.job_id != job_id}
        self._claims = {k: v for k, v in self._claims.items() if k[0] != job_id}
        self._audit_entry(job_id, "removed", actor, old.definition, None)
        return True

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        old = self._jobs.get(job_id)
        if old is None:
            return None
        now = _now()
        new = old.evolve(paused=paused, pause_note=note if paused else None, updated_at=now)
        self._jobs[job_id] = new
        self._audit_entry(job_id, "paused" if paused else "resumed", actor, None, None, now)
        return new

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        self._write_state(job_id, next_run, last_fire)

    def _write_state(
        self, job_id: str, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        old = self._jobs.get(job_id)
        if old is not None:
            # Called on every fire: built directly (`dataclasses.replace` costs ~4x more).
            # Not deferred to readers: a pending pair per job would cost ~85 bytes each.
            self._jobs[job_id] = StoredJob(
                id=old.id,
                definition=old.definition,
                paused=old.paused,
                pause_note=old.pause_note,
                next_run=next_run,
                last_fire=last_fire,
                created_at=old.created_at,
                updated_at=old.updated_at,
                version=old.version,
            )

    # -- claims --------------------------------------------------------------------------
    async def claim_fire(
        self, job_id: str, scheduled_for: datetime, node_id: str, *, now: datetime
    ) -> bool:
        key = (job_id, scheduled_for.astimezone(UTC))
        if key in self._claims:
            return False
        self._claims[key] = node_id
        return True

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        claims = self._claims
        won = []
        for fire in fires:
            key = (fire.job_id, fire.scheduled_for.astimezone(UTC))
            if key in claims:
                won.append(False)
                continue
            claims[key] = node_id
            self._write_state(fire.job_id, fire.next_run, fire.last_fire)
            won.append(True)
        return won

    # -- runs ----------------------------------------------------------------------------
    async def record_run(self, run: RunRecord) -> bool:
        old = self._runs.get(run.run_id)
        if old is not None and old.fence > run.fence:
            return False
        self._runs[run.run_id] = run
        return True

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def _matching(self, query: RunQuery) -> list[RunRecord]:
        out = []
        for run in self._runs.values():
            if query.job_id is not None and run.job_id != query.job_id:
                continue
            if query.statuses and run.status not in query.statuses:
                continue
            if query.since is not None and run.scheduled_for < query.since:
                continue
            if query.until is not None and run.scheduled_for >= query.until:
                continue
            out.append(run)
        out.sort(key=_sort_key, reverse=True)
        return out

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        return self._matching(query)[query.offset : query.offset + query.limit]

    async def count_runs(self, query: RunQuery) -> int:
        return len(self._matching(query))

    async def run_stats(self, job_id: str) -> RunStats:
        return stats_from_runs(job_id, self._matching(RunQuery(job_id=job_id)))

    async def prune_runs(
        self, *, older_than: datetime | None = None, keep_per_job: int | None = None
    ) -> int:
        doomed: set[str] = set()
        by_job: dict[str, list[RunRecord]] = {}
        for run in self._runs.values():
            if not run.status.is_final:
                continue
            by_job.setdefault(run.job_id, []).append(run)
            if older_than is not None and run.scheduled_for < older_than:
                doomed.add(run.run_id)
        if keep_per_job is not None:
            for runs in by_job.values():
                runs.sort(key=_sort_key, reverse=True)
                doomed.update(r.run_id for r in runs[keep_per_job:])
        for run_id in doomed:
            del self._runs[run_id]
        return len(doomed)

    # -- leases --------------------------------------------------------------------------
    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        run = self._runs.get(run_id)
        if run is None or run.status != RunStatus.running:
            return False
        if run.node_id != node_id or run.fence != fence:
            return False
        self._runs[run_id] = run.evolve(lease_expires_at=until)
        return True

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        out = []
        for run in list(self._runs.values()):
            if (
                run.status == RunStatus.running
                and run.lease_expires_at is not None
                and run.lease_expires_at <= now
            ):
                new = run.evolve(
                    status=RunStatus.interrupted,
                    fence=run.fence + 1,
                    finished_at=now,
                    lease_expires_at=None,
                )
                self._runs[run.run_id] = new
                out.append(new)
        return out

    # -- system state --------------------------------------------------------------------
    async def get_state(self, key: str) -> str | None:
        return self._state.get(key)

    async def set_state(self, key: str, value: str) -> None:
        self._state[key] = value

    # -- nodes ---------------------------------------------------------------------------
    async def write_heartbeat(self, heartbeat: NodeHeartbeat) -> None:
        self._nodes[heartbeat.node_id] = heartbeat

    async def list_heartbeats(self) -> list[NodeHeartbeat]:
        return [self._nodes[k] for k in sorted(self._nodes)]

    async def delete_node(self, node_id: str) -> bool:
        return self._nodes.pop(node_id, None) is not None

    # -- audit ---------------------------------------------------------------------------
    async def list_audit(self, job_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        entries = [e for e in reversed(self._audit) if job_id is None or e.job_id == job_id]
        return entries[:limit]

    def _audit_entry(
        self,
        job_id: str,
        action: str,
        actor: str,
        before: dict[str, object] | None,
        after: dict[str, object] | None,
        at: datetime | None = None,
    ) -> None:
        self._audit.append(
            AuditEntry(
                job_id=job_id,
                action=action,
                actor=actor,
                at=at or _now(),
                before=before,
                after=after,
            )
        )
