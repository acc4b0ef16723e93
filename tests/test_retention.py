"""`RunRetention`: `agentcron run` prunes old runs by age and by count per job (DESIGN 2.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentcron.models import RunQuery, RunRecord, RunStatus, new_run_id
from agentcron.retention import RunRetention
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def run(job_id: str, days_ago: float, status: RunStatus = RunStatus.succeeded) -> RunRecord:
    at = T0 - timedelta(days=days_ago)
    return RunRecord(
        run_id=new_run_id(), job_id=job_id, scheduled_for=at, status=status, started_at=at,
        finished_at=None if status is RunStatus.running else at,
    )  # fmt: skip


async def ages(store: MemoryStore, job_id: str) -> list[float]:
    runs = await store.list_runs(RunQuery(job_id=job_id, limit=100))
    return sorted((T0 - r.scheduled_for) / timedelta(days=1) for r in runs)


async def test_runs_older_than_the_retention_and_beyond_the_count_per_job_are_pruned_at_start() -> (
    None
):
    store, clock = MemoryStore(), VirtualClock(T0)
    for days_ago in (40, 31, 5, 4, 3, 2, 1):
        await store.record_run(run("a", days_ago))
    await store.record_run(run("b", 45, RunStatus.running))  # never pruned: not final
    async with RunRetention(store, clock, max_age_days=30, keep_per_job=3, interval_s=3600):
        await clock.advance(0)
        assert await ages(store, "a") == [1, 2, 3]
        assert await ages(store, "b") == [45]


async def test_it_prunes_again_every_interval_and_a_failing_prune_does_not_stop_it() -> None:
    class Flaky(MemoryStore):
        fail = True

        async def prune_runs(
            self, *, older_than: datetime | None = None, keep_per_job: int | None = None
        ) -> int:
            if self.fail:
                raise OSError("disk I/O error")
            return await super().prune_runs(older_than=older_than, keep_per_job=keep_per_job)

    store, clock = Flaky(), VirtualClock(T0)
    await store.record_run(run("a", 40))
    retention = RunRetention(store, clock, max_age_days=30, keep_per_job=10, interval_s=3600)
    async with retention:
        await clock.advance(0)
        assert await ages(store, "a") == [40]
        store.fail = False
        await clock.advance(3600)
        assert await ages(store, "a") == []
    assert retention.pruned == 1


@pytest.mark.parametrize("kwargs", [{"max_age_days": 0}, {"keep_per_job": 0}, {"interval_s": 0}])
def test_bad_limits_are_refused(kwargs: dict[str, float]) -> None:
    options: dict[str, float] = {"max_age_days": 30, "keep_per_job": 10, **kwargs}
    with pytest.raises(ValueError):
        RunRetention(MemoryStore(), VirtualClock(T0), **options)  # type: ignore[arg-type]
