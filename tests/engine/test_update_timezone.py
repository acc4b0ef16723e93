"""`update(job_id, timezone=...)` re-reads cron text given in the job's zone, and leaves a
`CronTrigger(expr, tz)` with a zone of its own alone."""

from __future__ import annotations

from datetime import timedelta

from agentcron.engine import Scheduler
from agentcron.store.memory import MemoryStore
from agentcron.triggers import CronTrigger, tz_name

from .conftest import T0, noop


async def test_a_timezone_change_keeps_the_zone_of_a_cron_trigger_with_its_own(
    sched: Scheduler, store: MemoryStore
) -> None:
    sched.add_job("tokyo", trigger=CronTrigger("0 9 * * *", "Asia/Tokyo"), handler=noop)
    job = sched.update("tokyo", timezone="America/New_York")
    assert job.timezone == "America/New_York"
    assert isinstance(job.trigger, CronTrigger)
    assert tz_name(job.trigger.tz) == "Asia/Tokyo"
    assert job.trigger.next_fire(T0) == T0 + timedelta(days=1)  # 09:00 in Tokyo = 00:00 UTC
    async with sched:
        await sched.flush()
        stored = await store.get_job("tokyo")
        assert stored is not None and stored.definition["trigger"]["tz"] == "Asia/Tokyo"


async def test_a_timezone_change_re_reads_cron_text_in_the_new_zone(sched: Scheduler) -> None:
    sched.add_job("daily", trigger="0 9 * * *", handler=noop, timezone="Asia/Tokyo")
    job = sched.update("daily", timezone="America/New_York")
    assert isinstance(job.trigger, CronTrigger)
    assert tz_name(job.trigger.tz) == "America/New_York"
    assert job.trigger.next_fire(T0) == T0 + timedelta(hours=14)  # 09:00 EST


async def test_cron_text_in_the_scheduler_zone_follows_a_later_timezone_change(
    sched: Scheduler,
) -> None:
    sched.add_job("daily", trigger="0 9 * * *", handler=noop)  # the scheduler's UTC
    job = sched.update("daily", timezone="Asia/Tokyo")
    assert isinstance(job.trigger, CronTrigger)
    assert tz_name(job.trigger.tz) == "Asia/Tokyo"
