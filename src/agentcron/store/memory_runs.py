"""The runs and fire claims of `MemoryStore`: runs by id (the running ones apart), indexed
by job, bounded per job.

Each run is kept as a plain tuple with its status as a string, not as the `RunRecord` it
came in as. Python's garbage collector stops tracking a plain tuple of strings, numbers and
datetimes, but always tracks a tuple subclass such as `RunRecord`: a store holding a few
hundred thousand runs would otherwise make every full collection walk all of them (at
10,000 jobs firing every second that was a quarter of the engine's CPU). Reads build the
`RunRecord` again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import pairwise

from agentcron.models import RunQuery, RunRecord, RunStatus

__all__ = ["RunTable"]

#: A run as stored: the `RunRecord` fields in order, with `status` as its string value.
Row = tuple[object, ...]

_STATUS = {str(s): s for s in RunStatus}
_OPEN = frozenset({str(RunStatus.scheduled), str(RunStatus.running)})
_RUNNING = str(RunStatus.running)
# Positions of the `RunRecord` fields read from stored rows.
_JOB_ID, _SCHEDULED_FOR, _STATUS_AT, _NODE_ID, _LEASE, _FENCE = 1, 2, 3, 9, 11, 12


_STATUS_TEXT = {s: str(s) for s in RunStatus}


def _row(run: RunRecord) -> Row:
    # Unpacked field by field: the fastest way to copy a 14-field tuple with one field
    # changed, and it fails loudly if `RunRecord` gains a field. (`RunTable.record_many`,
    # twice per fire, does the same inline.)
    a, b, c, status, e, f, g, h, i, j, k, l_, m, n = run
    return (a, b, c, _STATUS_TEXT[status], e, f, g, h, i, j, k, l_, m, n)


def _run(row: Row) -> RunRecord:
    return RunRecord._make((*row[:3], _STATUS[row[3]], *row[4:]))  # type: ignore[index]


def _batch_limit(cap: int | None) -> float:
    """How many final runs trigger a trim back to `cap`: 10 % more (infinite: no cap)."""
    return math.inf if cap is None else cap + max(1, cap // 10)


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


class RunTable:
    """Runs and claims; the run half of `MemoryStore` (see its docstring for the bound)."""

    def __init__(self, max_runs_per_job: int | None, max_runs: int | None = None) -> None:
        self.max_runs_per_job = max_runs_per_job
        self.max_runs = max_runs
        # A job is trimmed back to its cap when it holds this many final runs, and the
        # table back to `max_runs` when it holds `_trim_all_at` (batches: O(1) on average).
        self._trim_at = _batch_limit(max_runs_per_job)
        self._trim_all_at = _batch_limit(max_runs)
        #: Final runs in the table (the sum of every `_History.finals`).
        self.finals = 0
        #: Runs whose stored record is final or `scheduled`, by id, in the order they came
        #: here (the oldest first: what `_trim_all` drops first). A run id is in this dict
        #: or in `running`, never in both.
        self._rows: dict[str, Row] = {}
        #: Runs whose stored record is `running`, by id. Apart from the others because each
        #: fire's run comes here at its claim and leaves when it ends: a small dict of the
        #: runs in flight takes those writes, not the table of every stored run (a cache
        #: miss each); and it is what `interrupt_expired` reads.
        self.running: dict[str, Row] = {}
        self._history: dict[str, _History] = {}
        #: Fire claims: job id -> {scheduled_for in UTC: the node that won it}.
        #:
        #: Nested, not keyed by (job id, time) tuples: dicts of datetimes and strings are
        #: never tracked by the garbage collector, so a full collection does not walk the
        #: 100,000 claims of a busy store (a new tuple key is tracked, and so makes the
        #: dict tracked); and deleting a job drops its claims without reading the others'.
        self.claims: dict[str, dict[datetime, str]] = {}

    # -- claims --------------------------------------------------------------------------
    def claim(self, job_id: str, scheduled_for: datetime, node_id: str) -> bool:
        # `MemoryStore.start_fires` does the same inline (once per fire); the contract
        # test of an instant in another time zone holds the two to it.
        at = scheduled_for.astimezone(UTC)
        mine = self.claims.get(job_id)
        if mine is None:
            mine = self.claims[job_id] = {}
        elif at in mine:
            return False
        mine[at] = node_id
        return True

    def _drop_claim(self, job_id: str, scheduled_for: datetime) -> None:
        mine = self.claims.get(job_id)
        if mine is not None:
            mine.pop(scheduled_for.astimezone(UTC), None)

    # -- writing -------------------------------------------------------------------------
    def record(self, run: RunRecord) -> bool:
        """Insert or update `run` by its id; False when refused by fencing."""
        return self.record_many((run,))[0]

    def record_new(self, runs: Iterable[RunRecord]) -> None:
        """`record_many` for runs whose ids were never recorded (the runs `Store.start_fires`
        writes with their claims): nothing to look up or refuse, so none is looked up. Also
        `record_many`'s own way in for a run it does not hold."""
        rows, running, histories = self._rows, self.running, self._history
        for run in runs:
            (run_id, job_id, scheduled_for, status, attempt, started, finished, error, tail,
             node_id, skip, lease, fence, queued) = run  # fmt: skip
            text = _STATUS_TEXT[status]
            row = (run_id, job_id, scheduled_for, text, attempt, started, finished, error, tail,
                   node_id, skip, lease, fence, queued)  # fmt: skip
            if text == _RUNNING:
                running[run_id] = row
            else:
                rows[run_id] = row
            history = histories.get(job_id)
            if history is None:
                history = histories[job_id] = _History()
            history.ids[run_id] = None
            if history.in_order:
                newest = history.newest
                if newest is None or scheduled_for > newest:
                    history.newest = scheduled_for
                else:
                    history.in_order = False
            if text not in _OPEN:
                self._count_final(job_id, history, 1)

    def record_many(self, runs: Iterable[RunRecord]) -> list[bool]:
        """`record` each run in order; one result per run.

        One loop for a batch (a tick's `running` records, a turn's final ones): this runs
        twice per fire, and the table's attributes are read once per batch, not per run."""
        rows, running, histories = self._rows, self.running, self._history
        trim_at = self._trim_at
        out: list[bool] = []
        for run in runs:
            # Unpacked once into locals and packed again as the row (see `_row`).
            (run_id, job_id, scheduled_for, status, attempt, started, finished, error, tail,
             node_id, skip, lease, fence, queued) = run  # fmt: skip
            text = _STATUS_TEXT[status]
            # Taken out of `running` (the usual update: a run that ended), put back if kept.
            old = running.pop(run_id, None)
            was_running = old is not None
            if old is None:
                old = rows.get(run_id)
            if old is not None:
                if old[_FENCE] > fence:  # type: ignore[operator]
                    if was_running:
                        running[run_id] = old
                    out.append(False)
                    continue
                if old[_JOB_ID] != job_id:  # moved to another job: indexed again, as new
                    if was_running:
                        running[run_id] = old
                    self._forget(run_id, old)
                    old = None
            out.append(True)
            if old is None:
                self.record_new((run,))
                continue
            row = (run_id, job_id, scheduled_for, text, attempt, started, finished, error, tail,
                   node_id, skip, lease, fence, queued)  # fmt: skip
            if text == _RUNNING:
                running[run_id] = row
                if not was_running:
                    del rows[run_id]
            else:  # (one that leaves `running` goes to the end of `_rows`: it ended last)
                rows[run_id] = row
            if (old[_STATUS_AT] in _OPEN) is not (text in _OPEN):
                # `_count_final`, inline: a run's final record comes here once per fire.
                history = histories[job_id]
                delta = -1 if text in _OPEN else 1
                history.finals += delta
                self.finals += delta
                if history.finals >= trim_at:
                    self._trim(job_id, history)
                if self.finals >= self._trim_all_at:
                    self._trim_all()
        return out

    def _count_final(self, job_id: str, history: _History, delta: int) -> None:
        history.finals += delta
        self.finals += delta
        if history.finals >= self._trim_at:
            self._trim(job_id, history)
        if self.finals >= self._trim_all_at:
            self._trim_all()

    def _trim_all(self) -> None:
        """Drop the table's oldest final runs (the first recorded) beyond `max_runs`.

        Their claims go with them when their job's runs are in key order (no two runs of
        one occurrence, as in `_trim`); otherwise the claims stay until that job's own
        trim, which knows which occurrences are still in use."""
        assert self.max_runs is not None  # `_trim_all_at` is infinite without a cap
        excess = self.finals - self.max_runs
        doomed: list[tuple[str, Row]] = []
        for run_id, row in self._rows.items():  # insertion order: the oldest runs first
            if row[_STATUS_AT] not in _OPEN:
                doomed.append((run_id, row))
                if len(doomed) == excess:
                    break
        for run_id, row in doomed:
            job_id: str = row[_JOB_ID]  # type: ignore[assignment]
            scheduled_for: datetime = row[_SCHEDULED_FOR]  # type: ignore[assignment]
            history = self._history[job_id]
            del self._rows[run_id]
            del history.ids[run_id]
            history.finals -= 1
            if history.in_order:
                self._drop_claim(job_id, scheduled_for)
        self.finals -= len(doomed)

    def _forget(self, run_id: str, row: Row) -> None:
        """Delete a stored run and unindex it."""
        if self.running.pop(run_id, None) is None:
            del self._rows[run_id]
        history = self._history[row[_JOB_ID]]  # type: ignore[index]
        del history.ids[run_id]
        if row[_STATUS_AT] not in _OPEN:
            history.finals -= 1
            self.finals -= 1

    def _stored(self, run_id: str) -> Row | None:
        row = self.running.get(run_id)
        return row if row is not None else self._rows.get(run_id)

    def _trim(self, job_id: str, history: _History) -> None:
        """Drop the job's oldest final runs beyond `max_runs_per_job`, with their claims."""
        assert self.max_runs_per_job is not None  # `_trim_at` is infinite without a cap
        excess = history.finals - self.max_runs_per_job
        rows, ids = self._rows, history.ids
        doomed: list[tuple[str, datetime]] = []
        if history.in_order:
            # Ids in key order (the usual case): the oldest final runs come first, and no
            # two runs share an occurrence, so each dropped run's claim goes with it.
            for run_id in ids:
                row = rows.get(run_id)  # (None: running)
                if row is not None and row[_STATUS_AT] not in _OPEN:
                    doomed.append((run_id, row[_SCHEDULED_FOR]))  # type: ignore[arg-type]
                    if len(doomed) == excess:
                        break
            in_use: set[datetime] = set()
        else:
            every = sorted((_run(self._stored(i)) for i in ids), key=_sort_key)  # type: ignore[arg-type]
            old = [r for r in every if r.status not in _OPEN][:excess]
            doomed = [(r.run_id, r.scheduled_for) for r in old]
            dropped = {run_id for run_id, _ in doomed}
            kept = [r for r in every if r.run_id not in dropped]
            # A claim is shared by the runs of its occurrence: keep those still in use.
            in_use = {r.scheduled_for for r in kept}
            history.ids = {r.run_id: None for r in kept}
            history.in_order = all(a.scheduled_for < b.scheduled_for for a, b in pairwise(kept))
            history.newest = kept[-1].scheduled_for if kept else None
        for run_id, scheduled_for in doomed:
            del rows[run_id]
            history.ids.pop(run_id, None)
            if scheduled_for not in in_use:
                self._drop_claim(job_id, scheduled_for)
        history.finals -= len(doomed)
        self.finals -= len(doomed)

    def forget_job(self, job_id: str) -> None:
        """Delete every run and claim of `job_id`."""
        history = self._history.pop(job_id, None)
        if history is not None:
            self.finals -= history.finals
        for run_id in history.ids if history is not None else ():
            if self._rows.pop(run_id, None) is None:
                del self.running[run_id]
        self.claims.pop(job_id, None)

    # -- reading -------------------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord | None:
        row = self._stored(run_id)
        return _run(row) if row is not None else None

    def matching(self, query: RunQuery) -> list[RunRecord]:
        """The runs `query` selects, newest first (ignoring its offset and limit)."""
        rows: Iterable[Row]
        if query.job_id is None:
            rows = [*self._rows.values(), *self.running.values()]
        else:
            history = self._history.get(query.job_id)
            rows = [self._stored(i) for i in history.ids] if history is not None else []  # type: ignore[misc]
        out = []
        for row in rows:
            run = _run(row)
            if query.statuses and run.status not in query.statuses:
                continue
            if query.since is not None and run.scheduled_for < query.since:
                continue
            if query.until is not None and run.scheduled_for >= query.until:
                continue
            out.append(run)
        out.sort(key=_sort_key, reverse=True)
        return out

    def prune(self, *, older_than: datetime | None, keep_per_job: int | None) -> int:
        deleted = 0
        for history in self._history.values():
            final = [
                r
                for i in history.ids
                if (row := self._rows.get(i)) is not None  # (None: running)
                and (r := _run(row)).status not in _OPEN
            ]
            doomed: set[str] = set()
            if older_than is not None:
                doomed.update(r.run_id for r in final if r.scheduled_for < older_than)
            if keep_per_job is not None:
                final.sort(key=_sort_key, reverse=True)
                doomed.update(r.run_id for r in final[keep_per_job:])
            for run_id in doomed:
                del self._rows[run_id]
                del history.ids[run_id]
            history.finals -= len(doomed)
            self.finals -= len(doomed)
            deleted += len(doomed)
        return deleted

    # -- leases --------------------------------------------------------------------------
    def renew_lease(self, run_id: str, node_id: str, fence: int, until: datetime) -> bool:
        row = self.running.get(run_id)
        if row is None or row[_NODE_ID] != node_id or row[_FENCE] != fence:
            return False
        self.running[run_id] = (*row[:_LEASE], until, *row[_LEASE + 1 :])
        return True

    def interrupt_expired(self, now: datetime) -> list[RunRecord]:
        out = []
        for run_id, row in list(self.running.items()):
            lease: datetime | None = row[_LEASE]  # type: ignore[assignment]
            if lease is not None and lease <= now:
                del self.running[run_id]
                run = _run(row)
                new = run.interrupted(now)
                self._rows[run_id] = _row(new)
                out.append(new)
                self._count_final(run.job_id, self._history[run.job_id], 1)
        return out
