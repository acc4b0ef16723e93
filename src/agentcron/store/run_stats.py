"""Run statistics computed in Python from a job's runs, for stores without SQL (memory,
Redis); `sqlite_runs` computes the same numbers in SQL."""

from __future__ import annotations

import math

from agentcron.models import RunRecord, RunStats, RunStatus

__all__ = ["percentile", "stats_from_runs"]

_FAILED = (RunStatus.failed, RunStatus.timed_out, RunStatus.interrupted)


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
