"""Checks of what callers hand a store, shared by the backends: bad input is a `ValueError`
naming the problem, raised before anything is written.

The engine's per-tick calls (`start_fires`, `record_runs`) are not checked here: the engine
only hands them aware datetimes from its clock."""

from __future__ import annotations

import json
from datetime import datetime

from agentcron.clock import utc
from agentcron.models import RunQuery, RunRecord, StoredJob

__all__ = ["check_aware", "check_keep", "check_paging", "check_run", "definition_json"]


def check_aware(*values: datetime | None) -> None:
    """ValueError for a naive datetime or one outside years 1-9999 once in UTC."""
    for value in values:
        if value is not None:
            utc(value)


def check_run(run: RunRecord) -> None:
    check_aware(run.scheduled_for, run.started_at, run.finished_at, run.lease_expires_at)


def check_paging(query: RunQuery) -> None:
    check_aware(query.since, query.until)
    if query.limit < 0 or query.offset < 0:
        raise ValueError(
            f"run query limit and offset must be >= 0, not {query.limit} and {query.offset}"
        )


def check_keep(keep_per_job: int | None) -> None:
    if keep_per_job is not None and keep_per_job < 0:
        raise ValueError(f"keep_per_job must be >= 0, not {keep_per_job}")


def definition_json(job: StoredJob) -> str:
    """`job.definition` as compact JSON; ValueError naming the job when it holds something
    JSON cannot (a set, bytes, an object). NaN and infinities pass, as Python's json writes
    them: databases hold them from before the job codec refused them, and `jobs show` and
    `jobs export` deal with them."""
    check_aware(job.next_run, job.last_fire, job.created_at, job.updated_at)
    try:
        return json.dumps(job.definition, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"job {job.id!r}: its definition is not JSON: {exc}") from None
