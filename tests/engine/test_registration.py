"""Jobs added to a running scheduler: their next run is known at once, they fire on time,
they are stored with their own conflict policy, and jobs on one schedule share its parse."""

from __future__ import annotations

import functools
import random
from datetime import timedelta

import pytest

from agentcron.engine import Scheduler
from agentcron.engine.active import NO_RUNS, ActiveRun, JobEntry
from agentcron.engine.timeline import Timeline
from agentcron.handlers import RunContext
from agentcron.jobs import build_job
from agentcron.models import StoredJob
from agentcron.policies.errors import JobConfigError
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock
from agentcron.triggers import CronTrigger

from .conftest import T0, all_runs, noop


async def test_a_job_added_while_running_has_its_next_run_at_once_and_fires_on_time(
    sched: Scheduler, clock: VirtualClock
) -> None:
    async with sched:
        await clock.advance(90)  # 00:01:30
        for i in range(3):
            sched.add_job(f"j{i}", trigger="*/2 * * * *", handler=noop)
        assert {sched.job(f"j{i}").next_run for i in range(3)} == {T0 + timedelta(minutes=2)}
        await clock.advance(30)
        await sched.drain()
        for i in range(3):
            runs = await all_runs(sched, f"j{i}")
            assert [r.scheduled_for for r in runs] == [T0 + timedelta(minutes=2)]
            assert runs[0].started_at == T0 + timedelta(minutes=2)
        assert sched.job("j0").next_run == T0 + timedelta(minutes=4)


async def test_jobs_on_one_schedule_share_its_parsed_trigger(sched: Scheduler) -> None:
    first = sched.add_job("a", trigger="0 9 * * *", handler=noop)
    second = sched.add_job("b", trigger=" 0 9 * * * ", handler=noop)
    other_zone = sched.add_job("c", trigger="0 9 * * *", handler=noop, timezone="Europe/Berlin")
    assert first.trigger is second.trigger
    assert other_zone.trigger is not first.trigger


async def test_jobs_added_while_running_are_stored_with_their_own_conflict_policy(
    sched: Scheduler, clock: VirtualClock, store: MemoryStore
) -> None:
    async with sched:
        # Another node stores two jobs that this process then also defines.
        stored = sched.add_job("tmp", trigger="0 1 * * *", handler=noop)
        await sched.flush()
        definition = (await store.get_job("tmp")).definition  # type: ignore[union-attr]
        for job_id in ("kept", "replaced"):
            await store.save_job(StoredJob(id=job_id, definition=definition), actor="api")
        sched.add_job("kept", trigger="0 9 * * *", handler=noop, conflict="keep")
        sched.add_job("replaced", trigger="0 9 * * *", handler=noop)
        await sched.flush()
        kept, replaced = await store.get_job("kept"), await store.get_job("replaced")
        assert kept is not None and kept.definition["trigger"]["expr"] == "0 1 * * *"
        assert replaced is not None and replaced.definition["trigger"]["expr"] == "0 9 * * *"
        assert sched.job("kept").job.trigger is stored.trigger


def test_a_shared_cron_trigger_answers_like_a_fresh_one_for_any_question_order() -> None:
    shared = CronTrigger("*/7 3-5 * * *", "Europe/Berlin")
    rng = random.Random(7)
    for _ in range(500):
        after = T0 + timedelta(seconds=rng.randrange(0, 3 * 86400), microseconds=rng.choice((0, 1)))
        fresh = CronTrigger("*/7 3-5 * * *", "Europe/Berlin")
        assert shared.next_fire(after) == fresh.next_fire(after), after


def test_an_entry_pushed_twice_for_one_time_wakes_once_at_its_latest_position() -> None:
    timeline = Timeline()
    a, b, c = (JobEntry(job=build_job(i, trigger="* * * * *", handler=noop)) for i in "abc")
    ten, twenty, thirty = (T0 + timedelta(seconds=s) for s in (10, 20, 30))
    for entry in (a, b, c):
        timeline.push(entry, ten)
    timeline.push(a, twenty)
    timeline.push(a, ten)  # back: now after c
    timeline.drop(b)
    assert timeline.next_wake() == ten
    assert timeline.pop_due(thirty) == [c, a]
    assert timeline.next_wake() is None and len(timeline) == 0


def test_expressions_with_the_same_day_fields_share_their_day_tables() -> None:
    daily = [CronTrigger(f"{m} {h} * * *") for m, h in ((0, 9), (30, 17), (5, 0))]
    monthly = CronTrigger("0 9 1 * *")
    for trigger in (*daily, monthly):
        trigger.next_fire(T0)
    tables = {id(t._expr._m._day_tables) for t in daily}
    assert len(tables) == 1
    assert id(monthly._expr._m._day_tables) not in tables
    assert [t.next_fire(T0) for t in daily] == [
        T0 + timedelta(hours=9),
        T0 + timedelta(hours=17, minutes=30),
        T0 + timedelta(minutes=5),
    ]


def test_an_entry_keeps_its_rarely_set_state_to_itself() -> None:
    # Entries share one default part for pause notes, skips, etc. until one is set.
    a, b = (JobEntry(job=build_job(i, trigger="* * * * *", handler=noop)) for i in "ab")
    a.pause_note, a.consecutive_skips, a.dormant = "maintenance", 2, "handler missing"
    a.waiting()
    assert (b.pause_note, b.consecutive_skips, b.dormant, b.pending) == (None, 0, None, None)
    assert (a.pause_note, a.consecutive_skips, a.dormant) == ("maintenance", 2, "handler missing")
    assert a.pending is not None and a.pending_count == 0
    assert JobEntry(job=a.job, conflict="keep").conflict == "keep"
    assert b.conflict is None
    b.consecutive_skips = 0  # writing a default gives no part of its own
    assert b._rare is JobEntry(job=b.job)._rare


async def test_a_job_lets_go_of_its_dict_of_active_runs_when_its_last_run_ends(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # Why it matters: see `JobEntry.untrack` (a dict kept for the job's life went through
    # every generation of the garbage collector again at each fire).
    held: list[dict[str, ActiveRun]] = []

    async def remember_active(ctx: RunContext) -> None:
        held.append(dict(sched._entries["tick"].active))
        held.append(sched._entries["tick"].active)

    sched.add_job("tick", trigger="* * * * * *", handler=remember_active)
    async with sched:
        for _ in range(2):
            await clock.advance(1)
            await sched.drain()
            assert sched._entries["tick"].active is NO_RUNS
    first_copy, first, second_copy, second = held
    assert len(first_copy) == len(second_copy) == 1  # each run was tracked while it ran
    assert first is not second and first is not NO_RUNS
    assert NO_RUNS == {}


def test_bad_job_defaults_are_refused_by_the_scheduler_naming_job_defaults() -> None:
    with pytest.raises(JobConfigError, match=r"job_defaults: .*retyr") as caught:
        Scheduler(job_defaults={"retyr": 3})
    assert caught.value.field == "job_defaults"
    with pytest.raises(JobConfigError, match=r"job_defaults: timeout"):
        Scheduler(job_defaults={"timeout": -1})
    sched = Scheduler(job_defaults={"timeout": 30, "retry": 2})  # good ones still work
    assert sched.add_job("a", trigger="@hourly", handler=noop).timeout_s == 30


async def fetch(source: str) -> None:
    pass


def test_the_decorators_take_a_partial_given_an_id_and_ask_for_one_without() -> None:
    sched = Scheduler()
    gmail = functools.partial(fetch, source="gmail")
    assert sched.cron("@hourly", id="fetch-gmail")(gmail) is gmail
    assert sched.interval(minutes=5, id="fetch-gmail-often")(gmail) is gmail
    assert {v.id for v in sched.jobs()} == {"fetch-gmail", "fetch-gmail-often"}
    for decorator in (sched.cron("@hourly"), sched.interval(minutes=5)):
        with pytest.raises(JobConfigError, match=r"^id: .*id=") as caught:
            decorator(gmail)
        assert caught.value.field == "id"
    sched.cron("@hourly")(fetch)  # a function: its name, as before
    assert sched.job("fetch").job.id == "fetch"
