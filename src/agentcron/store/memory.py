"""`MemoryStore`: the reference implementation of `Store`, kept in process memory.

The default of the Python API (`Scheduler()` without a store) and the fake used by unit tests.
Nothing survives the process; use `sqlite:///...` for durability.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agentcron.models import (
    AuditEntry,
    ConflictPolicy,
    FireStart,
    NodeHeartbeat,
    RunQuery,
    RunRecord,
    RunStats,
    StoredJob,
)
from agentcron.store.base import JobConflictError
from agentcron.store.checks import (
    check_aware,
    check_keep,
    check_paging,
    check_run,
    definition_json,
)
from agentcron.store.memory_runs import RunTable
from agentcron.store.run_stats import stats_from_runs

__all__ = ["MemoryStore"]


class _Stamps:
    """The wall-clock time, to the millisecond, for creation and audit stamps (scheduling
    decisions never read it). Stamps taken within one millisecond are one `datetime`
    object: adding 100,000 jobs in a burst keeps a few hundred datetimes, not 100,000
    (48 bytes each)."""

    __slots__ = ("_ms", "_stamp", "_time_ns")

    def __init__(self, time_ns: Callable[[], int] = time.time_ns) -> None:
        self._time_ns = time_ns
        self._ms = -1
        self._stamp = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        ms = self._time_ns() // 1_000_000
        if ms != self._ms:
            self._ms, self._stamp = ms, datetime.fromtimestamp(ms / 1000, UTC)
        return self._stamp


@dataclass(eq=False)
class _JobRow:
    """A stored job, mutable inside the store: the engine writes `next_run`/`last_fire` on
    every fire, and setting two attributes costs a fraction of building a frozen
    `StoredJob` (readers get a `StoredJob` snapshot; same size as one).

    A row added without a given `created_at` is also its own "added" audit entry (made
    when the audit is read: `added_by` at `created_at`, with definition `added`), which
    costs two attributes instead of an `AuditEntry` per job."""

    __slots__ = (
        *("id", "definition", "paused", "pause_note", "next_run", "last_fire"),
        *("created_at", "updated_at", "version", "added_by", "added"),
    )
    if TYPE_CHECKING:  # set on the rows that stand for their "added" entry; not fields
        added_by: str = field(init=False)
        added: dict[str, Any] = field(init=False)

    id: str
    definition: dict[str, Any]
    paused: bool
    pause_note: str | None
    next_run: datetime | None
    last_fire: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    version: int

    def snapshot(self) -> StoredJob:
        return StoredJob(
            id=self.id,
            definition=self.definition,
            paused=self.paused,
            pause_note=self.pause_note,
            next_run=self.next_run,
            last_fire=self.last_fire,
            created_at=self.created_at,
            updated_at=self.updated_at,
            version=self.version,
        )


def _added_entry(row: _JobRow) -> AuditEntry:
    assert row.created_at is not None
    return AuditEntry(
        job_id=row.id,
        action="added",
        actor=row.added_by,
        at=row.created_at,
        before=None,
        after=row.added,
    )


class MemoryStore:
    """All `Store` operations on dicts; see `agentcron.store.base` for the contract.

    Run history is bounded: each job keeps its newest `max_runs_per_job` final runs (newest
    by `scheduled_for`, then `run_id`, as runs are listed) and the older ones are dropped,
    with their fire claims. Runs still `running` or `scheduled` are never dropped. The drop
    is done in batches, when a job holds `max_runs_per_job` + 10 % runs, so recording a run
    stays O(1) on average; between two batches a job may hold up to 10 % more final runs.

    The whole table is bounded too: beyond `max_runs` final runs (+ 10 %, in batches) the
    oldest ones of any job are dropped. With many frequent jobs the per-job cap alone
    would allow millions of runs (10,000 jobs firing every second: 10 million, several
    GB); a run costs about 450 bytes, so the default 100,000 is about 45 MB.
    `None` turns either bound off (memory then grows with every fire).

    Runs are indexed by job (reading one job's runs never scans the others') and the
    `running` runs are kept apart, so `interrupt_expired` looks only at them.
    """

    url = "memory://"
    #: No other process can change it: a `Scheduler` on it does not watch it for job
    #: changes (`watch_jobs_s`).
    shared = False
    #: A fire in flight holds about 15 objects the garbage collector tracks (task,
    #: coroutines, records, context ...); 32 fires stay under its first threshold (700 new
    #: objects), so most of a batch dies before a collection sees it. At 64 or more every
    #: batch is collected and promoted: 4-5 µs of collection a fire instead of 1-1.5
    #: (`bench.engine_cpu` with `gc.callbacks`, 1,000 and 10,000 jobs).
    fire_batch = 32

    def __init__(
        self, *, max_runs_per_job: int | None = 1000, max_runs: int | None = 100_000
    ) -> None:
        for name, cap in (("max_runs_per_job", max_runs_per_job), ("max_runs", max_runs)):
            if cap is not None and cap < 1:
                raise ValueError(f"{name} must be at least 1 or None, not {cap}")
        self.max_runs_per_job = max_runs_per_job
        self.max_runs = max_runs
        self._jobs: dict[str, _JobRow] = {}
        self._runs = RunTable(max_runs_per_job, max_runs)
        self._state: dict[str, str] = {}
        self._nodes: dict[str, NodeHeartbeat] = {}
        # Audit entries, oldest first; a `_JobRow` stands for its own "added" entry.
        self._audit: list[AuditEntry | _JobRow] = []
        self._stamps = _Stamps()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- jobs ----------------------------------------------------------------------------
    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        definition_json(job)  # as the other stores refuse it
        now = self._stamps.now()  # one datetime for the job's stamps and its audit entry
        row = self._jobs.get(job.id)
        if row is None:
            row = _JobRow(
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
            self._jobs[job.id] = row
            if job.created_at is None:  # the row is its "added" entry (see `_JobRow`)
                row.added_by, row.added = actor, row.definition
                self._audit.append(row)
            else:
                self._audit_entry(job.id, "added", actor, None, row.definition, now)
            return row.snapshot()
        if conflict == "keep":
            return row.snapshot()
        if conflict == "error":
            raise JobConflictError(f"a job with id {job.id!r} already exists")
        if row.definition == job.definition:
            return row.snapshot()
        before = row.definition
        row.definition, row.updated_at, row.version = job.definition, now, row.version + 1
        self._audit_entry(job.id, "updated", actor, before, row.definition, now)
        return row.snapshot()

    async def get_job(self, job_id: str) -> StoredJob | None:
        row = self._jobs.get(job_id)
        return row.snapshot() if row is not None else None

    async def list_jobs(self) -> list[StoredJob]:
        return [self._jobs[k].snapshot() for k in sorted(self._jobs)]

    async def delete_job(self, job_id: str, *, actor: str) -> bool:
        old = self._jobs.pop(job_id, None)
        if old is None:
            return False
        self._runs.forget_job(job_id)
        self._audit_entry(job_id, "removed", actor, old.definition, None)
        return True

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        row = self._jobs.get(job_id)
        if row is None:
            return None
        now = self._stamps.now()
        row.paused, row.pause_note, row.updated_at = paused, note if paused else None, now
        self._audit_entry(job_id, "paused" if paused else "resumed", actor, None, None, now)
        return row.snapshot()

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        check_aware(next_run, last_fire)
        self._write_state(job_id, next_run, last_fire)

    def _write_state(
        self, job_id: str, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
        row = self._jobs.get(job_id)
        if row is not None:
            row.next_run, row.last_fire = next_run, last_fire

    # -- claims --------------------------------------------------------------------------
    async def claim_fire(
        self, job_id: str, scheduled_for: datetime, node_id: str, *, now: datetime
    ) -> bool:
        check_aware(scheduled_for, now)
        return self._runs.claim(job_id, scheduled_for, node_id)

    async def start_fires(
        self, fires: Sequence[FireStart], node_id: str, *, now: datetime
    ) -> list[bool]:
        # `RunTable.claim` and `_write_state`, inline: this runs once per fire.
        claims, jobs = self._runs.claims, self._jobs
        won = []
        started: list[RunRecord] = []
        for job_id, scheduled_for, next_run, last_fire, run in fires:
            at = scheduled_for.astimezone(UTC)  # as `RunTable.claim` claims it
            mine = claims.get(job_id)
            if mine is None:
                mine = claims[job_id] = {}
            elif at in mine:
                won.append(False)
                continue
            mine[at] = node_id
            row = jobs.get(job_id)
            if row is not None:
                row.next_run, row.last_fire = next_run, last_fire
            if run is not None:
                started.append(run)
            won.append(True)
        if started:
            self._runs.record_new(started)  # all won, all new (`FireStart.run`)
        return won

    # -- runs ----------------------------------------------------------------------------
    async def record_run(self, run: RunRecord) -> bool:
        check_run(run)
        return self._runs.record(run)

    async def record_runs(self, runs: Sequence[RunRecord]) -> list[bool]:
        return self._runs.record_many(runs)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    async def list_runs(self, query: RunQuery) -> list[RunRecord]:
        check_paging(query)
        return self._runs.matching(query)[query.offset : query.offset + query.limit]

    async def count_runs(self, query: RunQuery) -> int:
        check_aware(query.since, query.until)
        return len(self._runs.matching(query))

    async def run_stats(self, job_id: str) -> RunStats:
        return stats_from_runs(job_id, self._runs.matching(RunQuery(job_id=job_id)))

    async def prune_runs(
        self, *, older_than: datetime | None = None, keep_per_job: int | None = None
    ) -> int:
        check_aware(older_than)
        check_keep(keep_per_job)
        return self._runs.prune(older_than=older_than, keep_per_job=keep_per_job)

    # -- leases --------------------------------------------------------------------------
    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        check_aware(until)
        return self._runs.renew_lease(run_id, node_id, fence, until)

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        check_aware(now)
        return self._runs.interrupt_expired(now)

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
        entries = [
            e
            for e in reversed(self._audit)
            if job_id is None or (e.id if isinstance(e, _JobRow) else e.job_id) == job_id
        ]
        return [_added_entry(e) if isinstance(e, _JobRow) else e for e in entries[:limit]]

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
                at=at or self._stamps.now(),
                before=before,
                after=after,
            )
        )
