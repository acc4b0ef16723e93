"""`RunRetention`: old runs are pruned by age and by count per job while `agentcron run` runs.

DESIGN 2.5: "Old runs are pruned by age and by count per job". A 24/7 scheduler with a job
every second records 86,400 runs a day; without pruning the run log (and every page of it)
grows forever. `RunRetention` prunes once at start and then every `interval_s` seconds of the
injected clock, with `SCHEDULER_RUN_RETENTION_DAYS` and `SCHEDULER_RUNS_PER_JOB`. It only
deletes final runs (never `running`/`scheduled`, see `Store.prune_runs`). A failing prune
(store unreachable, disk full) is logged and tried again next interval; it never stops the
scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from types import TracebackType

from agentcron.clock import Clock
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_wait

__all__ = ["DEFAULT_PRUNE_INTERVAL_S", "RunRetention"]

log = logging.getLogger("agentcron.retention")

#: How often runs are pruned (the first prune is at start).
DEFAULT_PRUNE_INTERVAL_S = 3600.0


class RunRetention:
    """Prune runs older than `max_age_days` and beyond the newest `keep_per_job` per job.

    `await retention.prune()` does one pass and returns how many runs it deleted;
    `async with retention:` runs the loop as a named task until the block ends.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        max_age_days: int,
        keep_per_job: int,
        interval_s: float = DEFAULT_PRUNE_INTERVAL_S,
    ) -> None:
        if max_age_days < 1 or keep_per_job < 1:
            raise ValueError("max_age_days and keep_per_job must be at least 1")
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.store = store
        self.clock = clock
        self.max_age = timedelta(days=max_age_days)
        self.keep_per_job = keep_per_job
        self.interval_s = interval_s
        self.pruned = 0
        self._task: asyncio.Task[None] | None = None

    async def prune(self) -> int:
        deleted = await self.store.prune_runs(
            older_than=self.clock.now() - self.max_age, keep_per_job=self.keep_per_job
        )
        self.pruned += deleted
        if deleted:
            log.info("pruned %d old run(s)", deleted, extra={"event": "runs.pruned"})
        return deleted

    async def run(self) -> None:
        while True:
            try:
                await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pruning old runs failed (retrying in %ss): %s", self.interval_s, exc)
            await self.clock.sleep(self.interval_s)

    async def __aenter__(self) -> RunRetention:
        self._task = asyncio.get_running_loop().create_task(
            self.run(), name="agentcron-run-retention"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
