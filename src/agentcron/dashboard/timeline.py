"""The timeline: what ran in the last hours and what will fire in the next, per job.

Fires are grouped into buckets (96 per side: 15 minutes for 24 h), so a job that fires every
second costs as much as one that fires hourly: one `next_fire` call and one entry per
bucket. A bucket of runs shows its worst status and how many runs it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agentcron.dashboard import schemas, views
from agentcron.models import RunRecord, RunStatus

__all__ = ["BUCKETS_PER_SIDE", "TimelineJob", "build_timeline"]

BUCKETS_PER_SIDE = 96
_WORST_FIRST = (
    RunStatus.failed, RunStatus.timed_out, RunStatus.interrupted, RunStatus.cancelled,
    RunStatus.running, RunStatus.skipped, RunStatus.succeeded, RunStatus.scheduled,
)  # fmt: skip
_RANK = {status: i for i, status in enumerate(_WORST_FIRST)}
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class TimelineJob:
    job_id: str
    name: str
    trigger: Any
    timezone: str
    active: bool  # not paused, enabled: planned fires are drawn


def build_timeline(
    jobs: Sequence[TimelineJob],
    runs: Sequence[RunRecord],
    now: datetime,
    hours: int,
    max_rows: int,
) -> schemas.TimelineOut:
    """Pure: the timeline around `now` for `jobs`, from `runs` (any order)."""
    span = timedelta(hours=hours)
    start, end = now - span, now + span
    bucket = span / BUCKETS_PER_SIDE

    def index(at: datetime) -> int:
        return int((at - start) / bucket)

    grouped: dict[tuple[str, int], list[RunRecord]] = {}
    for run in runs:
        at = run.started_at or run.scheduled_for
        if start <= at <= end:
            grouped.setdefault((run.job_id, index(at)), []).append(run)
    with_runs = {job_id for job_id, _ in grouped}
    # Jobs that ran in the window first, then the others, each group by name.
    ordered = sorted(jobs, key=lambda j: (j.job_id not in with_runs, j.name.casefold(), j.job_id))
    rows = ordered[:max_rows]
    entries: list[schemas.TimelineEntry] = []
    for job in rows:
        for key in sorted(k for k in grouped if k[0] == job.job_id):
            group = grouped[key]
            worst = min(group, key=lambda r: _RANK.get(r.status, len(_RANK)))
            latest = max(group, key=lambda r: r.started_at or r.scheduled_for)
            durations = [d for r in group if (d := r.duration_s) is not None]
            entries.append(schemas.TimelineEntry(
                job_id=job.job_id, name=job.name, kind="run", count=len(group),
                at=latest.started_at or latest.scheduled_for, status=str(worst.status),
                duration=max(durations) if durations else None,
            ))  # fmt: skip
        if not job.active:
            continue
        cursor = now
        while cursor < end:
            upcoming = views.next_fires(job.trigger, job.timezone, cursor, 1)
            if not upcoming or upcoming[0] > end:
                break
            at = upcoming[0]
            entries.append(schemas.TimelineEntry(
                job_id=job.job_id, name=job.name, kind="planned", count=1, at=at,
                status="scheduled",
            ))  # fmt: skip
            cursor = max(at, start + bucket * (index(at) + 1) - _TICK)
    entries.sort(key=lambda e: e.at)
    return schemas.TimelineOut(
        start=start, now=now, end=end, bucket_seconds=bucket.total_seconds(),
        rows=[schemas.TimelineRow(job_id=j.job_id, name=j.name) for j in rows],
        total_jobs=len(jobs), entries=entries,
    )  # fmt: skip
