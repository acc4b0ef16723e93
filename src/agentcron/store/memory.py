"""`MemoryStore`: the reference implementation of `Store`, kept in process memory.

The default of the Python API (`Scheduler()` without a store) and the fake used by unit tests.
Nothing survives the process; use `sqlite:///...` for durability.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

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
from agentcron.store.run_stats import stats_from_runs

__all__ = ["MemoryStore"]

# Not final (`RunStatus.is_final` is False); a tuple test is cheaper than the property.
_OPEN = (RunStatus.scheduled, RunStatus.running)
_RUNNING = RunStatus.running  # a module global: reading an enum member costs ~100 ns


def _now() -> datetime:
    # Only stamps audit/creation times; scheduling decisions never read it.
    return datetime.now(UTC)


def _sort_key(run: RunRecord) -> tuple[datetime, str]:
    return (run.scheduled_for, run.run_id)


class _History:
    """One job's runs: their ids, how many are final, and whether the ids are in key order."""

    __slots__ = ("finals", "ids", "in_order", "newest")

    def __init__(self) -> None:
        # A dict as an ordered set, in the order the runs were first recorded.
        self.ids: dict[str, None] = {}
        self.finals = 0
        # True while each id was recorded with a `scheduled_for` later than all before it.
        self.in_order = True
        self.newest: datetime | None = None


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
    `max_runs_per_job=None` keeps every run (memory then grows with every fire).

    Runs are indexed by job (reading one job's runs never scans the others') and the
    `running` runs holding a lease are kept apart, so `interrupt_expired` looks only at them.
    """

    url = "memory://"

    def __init__(self, *, max_runs_per_job: int | None = 1000) -> None:
        if max_runs_per_job is not None and max_runs_per_job < 1:
            raise ValueError(f"max_runs_per_job must be at least 1 or None, not {max_runs_per_job}")
        self.max_runs_per_job = max_runs_per_job
        # A job is trimmed back to the cap when it holds this many final runs.
        self._trim_at = (
            math.inf
            if max_runs_per_job is None
            else max_runs_per_job + max(1, max_runs_per_job // 10)
        )
        self._jobs: dict[str, _JobRow] = {}
        self._runs: dict[str, RunRecord] = {}
        self._history: dict[str, _History] = {}
        # Run ids whose stored record is `running` with a lease, in the order they got one
        # (what `interrupt_expired` reads; a dict as an ordered set).
        self._leased: dict[str, None] = {}
        self._claims: dict[tuple[str, datetime], str] = {}
        self._state: dict[str, str] = {}
        self._nodes: dict[str, NodeHeartbeat] = {}
        # Audit entries, oldest first; a `_JobRow` stands for its own "added" entry.
        self._audit: list[AuditEntry | _JobRow] = []

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- jobs ----------------------------------------------------------------------------
    async def save_job(
        self, job: StoredJob, *, actor: str, conflict: ConflictPolicy = "replace"
    ) -> StoredJob:
        now = _now()  # one datetime for the job's stamps and its audit entry (memory)
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
        history = self._history.pop(job_id, None)
        for run_id in history.ids if history is not None else ():
            del self._runs[run_id]
            self._leased.pop(run_id, None)
        self._claims = {k: v for k, v in self._claims.items() if k[0] != job_id}
        self._audit_entry(job_id, "removed", actor, old.definition, None)
        return True

    async def set_paused(
        self, job_id: str, paused: bool, *, note: str | None = None, actor: str
    ) -> StoredJob | None:
        row = self._jobs.get(job_id)
        if row is None:
            return None
        now = _now()
        row.paused, row.pause_note, row.updated_at = paused, note if paused else None, now
        self._audit_entry(job_id, "paused" if paused else "resumed", actor, None, None, now)
        return row.snapshot()

    async def set_job_state(
        self, job_id: str, *, next_run: datetime | None, last_fire: datetime | None
    ) -> None:
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
        # Called twice per fire (running, then final): written out inline for those two.
        run_id = run.run_id
        status = run.status
        old = self._runs.get(run_id)
        if old is not None:
            if old.fence > run.fence:
                return False
            if old.job_id != run.job_id:  # moved to another job: indexed again, as new
                self._forget(old)
                old = None
        self._runs[run_id] = run
        if old is None:
            history = self._history.get(run.job_id)
            if history is None:
                history = self._history[run.job_id] = _History()
            history.ids[run_id] = None
            if history.in_order:
                newest = history.newest
                if newest is None or run.scheduled_for > newest:
                    history.newest = run.scheduled_for
                else:
                    history.in_order = False
            if status not in _OPEN:
                history.finals += 1
                if history.finals >= self._trim_at:
                    self._trim(run.job_id, history)
        else:
            was_open = old.status in _OPEN
            if was_open is not (status in _OPEN):
                history = self._history[run.job_id]
                history.finals += 1 if was_open else -1
                if history.finals >= self._trim_at:
                    self._trim(run.job_id, history)
            if old.status == _RUNNING:
                self._leased.pop(run_id, None)
        if status == _RUNNING and run.lease_expires_at is not None:
            self._leased[run_id] = None
        return True

    def _forget(self, run: RunRecord) -> None:
        """Delete a stored run and unindex it."""
        del self._runs[run.run_id]
        history = self._history[run.job_id]
        del history.ids[run.run_id]
        if run.status not in _OPEN:
            history.finals -= 1
        self._leased.pop(run.run_id, None)

    def _trim(self, job_id: str, history: _History) -> None:
        """Drop the job's oldest final runs beyond `max_runs_per_job`, with their claims."""
        assert self.max_runs_per_job is not None  # `_trim_at` is infinite without a cap
        excess = history.finals - self.max_runs_per_job
        runs, ids = self._runs, history.ids
        if history.in_order:
            # Ids in key order (the usual case): the oldest final runs come first, and no
            # two runs share an occurrence, so each dropped run's claim goes with it.
            doomed = []
            for run_id in ids:
                run = runs[run_id]
                if run.status not in _OPEN:
                    doomed.append(run)
                    if len(doomed) == excess:
                        break
            in_use: set[datetime] = set()
        else:
            every = sorted((runs[i] for i in ids), key=_sort_key)
            doomed = [r for r in every if r.status not in _OPEN][:excess]
            dropped = {r.run_id for r in doomed}
            kept = [r for r in every if r.run_id not in dropped]
            # A claim is shared by the runs of its occurrence: keep those still in use.
            in_use = {r.scheduled_for for r in kept}
            history.ids = {r.run_id: None for r in kept}
            history.in_order = all(a.scheduled_for < b.scheduled_for for a, b in pairwise(kept))
            history.newest = kept[-1].scheduled_for if kept else None
        for run in doomed:
            del runs[run.run_id]
            history.ids.pop(run.run_id, None)
            if run.scheduled_for not in in_use:
                self._claims.pop((job_id, run.scheduled_for.astimezone(UTC)), None)
        history.finals -= len(doomed)

    async def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def _matching(self, query: RunQuery) -> list[RunRecord]:
        if query.job_id is None:
            candidates: Iterable[RunRecord] = self._runs.values()
        else:
            runs = self._runs
            history = self._history.get(query.job_id)
            candidates = [runs[i] for i in history.ids] if history is not None else []
        out = []
        for run in candidates:
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
        deleted = 0
        for history in self._history.values():
            final = [r for i in history.ids if (r := self._runs[i]).status not in _OPEN]
            doomed: set[str] = set()
            if older_than is not None:
                doomed.update(r.run_id for r in final if r.scheduled_for < older_than)
            if keep_per_job is not None:
                final.sort(key=_sort_key, reverse=True)
                doomed.update(r.run_id for r in final[keep_per_job:])
            for run_id in doomed:
                del self._runs[run_id]
                del history.ids[run_id]
            history.finals -= len(doomed)
            deleted += len(doomed)
        return deleted

    # -- leases --------------------------------------------------------------------------
    async def renew_lease(self, run_id: str, node_id: str, fence: int, *, until: datetime) -> bool:
        run = self._runs.get(run_id)
        if run is None or run.status != RunStatus.running:
            return False
        if run.node_id != node_id or run.fence != fence:
            return False
        self._runs[run_id] = run.evolve(lease_expires_at=until)
        self._leased[run_id] = None
        return True

    async def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        out = []
        for run_id in list(self._leased):
            run = self._runs[run_id]
            if run.lease_expires_at is not None and run.lease_expires_at <= now:
                self._leased.pop(run_id, None)
                new = run.evolve(
                    status=RunStatus.interrupted,
                    fence=run.fence + 1,
                    finished_at=now,
                    lease_expires_at=None,
                )
                self._runs[run.run_id] = new
                out.append(new)
                history = self._history[run.job_id]
                history.finals += 1
                if history.finals >= self._trim_at:
                    self._trim(run.job_id, history)
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
                at=at or _now(),
                before=before,
                after=after,
            )
        )
