"""Hostile input to the public API: refused at `add_job` / `update` / `pause` time with a
one-line `JobConfigError` naming the field, never at fire time; and handlers that misbehave
in odd ways still end their runs recorded while the next fires happen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agentcron.engine import JobNotFoundError, Scheduler
from agentcron.jobs import job_from_definition, update_job
from agentcron.models import RunStatus
from agentcron.policies import JobConfigError, Retry
from agentcron.testing import VirtualClock
from agentcron.triggers import Date, Interval, trigger_from_dict

from .conftest import T0, all_runs, noop

ONCE = Date(T0 + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        # Each of these raised OverflowError (not a ValueError) ...
        ({"timeout": 10**400}, "timeout"),
        ({"jitter": 10**400}, "jitter"),
        ({"overlap": {"policy": "delay", "delay": 10**400}}, "overlap.delay"),
        ({"misfire": {"catchup_window": 10**400}}, "misfire.catchup_window"),
        ({"retry": {"max_attempts": 2, "max_delay": 10**400}}, "retry.max_delay"),
        # ... or was accepted, to overflow `datetime` arithmetic at fire time.
        ({"timeout": 1e300}, "timeout"),
        ({"timeout": timedelta(days=999_999_999)}, "timeout"),
        ({"jitter": 1e300}, "jitter"),
        ({"expect_every": 1e300}, "expect_every"),
        ({"circuit": {"reset_timeout": 1e300}}, "circuit.reset_timeout"),
        ({"misfire": {"grace": 1e300}}, "misfire.grace"),
        ({"overlap": {"policy": "delay", "delay": 1e300}}, "overlap.delay"),
        ({"retry": {"max_attempts": 2, "base_delay": 1, "max_delay": 1e300}}, "retry.max_delay"),
    ],
)
def test_durations_longer_than_a_hundred_years_are_refused_at_add_job_naming_the_field(
    make_scheduler: Callable[..., Scheduler], options: dict[str, Any], field: str
) -> None:
    sched = make_scheduler()
    with pytest.raises(JobConfigError) as info:
        sched.add_job("j", trigger="* * * * *", handler=noop, **options)
    assert info.value.field == field
    assert "100 years" in str(info.value) or "finite" in str(info.value)
    assert sched.jobs() == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: Interval(days=999_999_999),  # accepted: its first fire overflowed the year 9999
        lambda: Interval(seconds=1e300),
        lambda: Interval(seconds=True),  # accepted as one second
        lambda: Interval(seconds=5, start="2026-01-01T00:00:00+00:00"),  # AttributeError
        lambda: trigger_from_dict({"type": "interval"}),  # KeyError
        lambda: trigger_from_dict({"type": "cron"}),  # KeyError
        lambda: trigger_from_dict({"type": "interval", "seconds": "often"}),  # bare ValueError
        lambda: trigger_from_dict({"type": "date", "at": "tomorrow"}),  # bare ValueError
        lambda: Date("2026-03-01T00:00:00+00:00"),  # type: ignore[arg-type]
    ],
)
def test_bad_triggers_are_refused_naming_the_trigger(make: Callable[[], object]) -> None:
    with pytest.raises(JobConfigError) as info:
        make()
    assert info.value.field in ("trigger", "trigger.start")


async def test_a_huge_interval_added_while_running_is_refused_and_the_scheduler_runs_on(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("tick", trigger=Interval(seconds=1), handler=noop)
    async with sched:
        with pytest.raises(JobConfigError):  # was OverflowError: date value out of range
            sched.add_job("huge", trigger=Interval(days=999_999_999), handler=noop)
        await clock.advance(3)
        assert len(await all_runs(sched, "tick")) == 3


def test_an_interval_anchored_near_the_year_9999_ends_instead_of_overflowing() -> None:
    trigger = Interval(hours=1, start=datetime(9999, 12, 31, 22, tzinfo=UTC))
    last = trigger.next_fire(datetime(9999, 12, 31, 22, 30, tzinfo=UTC))
    assert last == datetime(9999, 12, 31, 23, tzinfo=UTC)
    assert trigger.next_fire(last) is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": ["nightly"]}, "name"),  # was stored as the name "['nightly']"
        ({"name": 5}, "name"),
        ({"name": True}, "name"),
        ({"name": "x" * 501}, "name"),
        ({"circuit": {"name": 5}}, "circuit.name"),
        ({"description": ["x"]}, "description"),
        ({"description": "x" * 10_001}, "description"),
        ({"tags": True}, "tags"),  # was TypeError: 'bool' object is not iterable
        ({"tags": {"a": 1}}, "tags"),
        ({"tags": ["a\nb"]}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"tags": [str(n) for n in range(51)]}, "tags"),
        ({"queue": "a\nb"}, "queue"),
        ({"queue": "q" * 201}, "queue"),
        ({"queue": "a:b"}, "queue"),
        ({"concurrency_group": "a\tb"}, "concurrency_group"),
        ({"timezone": timezone(timedelta(hours=2))}, "timezone"),
    ],
)
def test_text_options_must_be_text_of_bounded_length_and_labels_one_line(
    make_scheduler: Callable[..., Scheduler], options: dict[str, Any], field: str
) -> None:
    sched = make_scheduler()
    with pytest.raises(JobConfigError) as info:
        sched.add_job("j", trigger="* * * * *", handler=noop, **options)
    assert info.value.field == field
    assert sched.jobs() == []


def test_a_stored_job_made_before_the_text_limits_still_loads() -> None:
    # `jobs add --name` and old stores may hold names and tags the limits now refuse from
    # code; a stored job is listed and scheduled as it was (listings escape them).
    definition = {
        "trigger": {"type": "interval", "seconds": 60.0},
        "handler": {"kind": "callable", "ref": "engine.engine_samples:record"},
        "name": "\x1b[1mA" + "n" * 600,
        "tags": ["t\x1b[2J"],
    }
    job = job_from_definition("old", definition)
    assert job.tags == ("t\x1b[2J",) and len(job.name) == 605
    renamed = update_job(job, enabled=False)  # changing another option leaves them be
    assert renamed.name == job.name and not renamed.enabled
    with pytest.raises(JobConfigError) as info:
        update_job(job, tags=["t\x1b[2J"])
    assert info.value.field == "tags"


def test_a_job_in_a_fixed_offset_zone_is_refused_instead_of_breaking_its_next_update(
    make_scheduler: Callable[..., Scheduler],
) -> None:
    # Accepted before, with the zone stored as "UTC+02:00": the next `update` (or a
    # restart) failed with "unknown time zone 'UTC+02:00'".
    sched = make_scheduler()
    sched.add_job("j", trigger="0 9 * * *", handler=noop)
    with pytest.raises(JobConfigError) as info:
        sched.update("j", timezone=timezone(timedelta(hours=2)))
    assert info.value.field == "timezone" and "IANA" in str(info.value)
    sched.update("j", name="still updatable")
    assert sched.job("j").job.timezone == "UTC"


@pytest.mark.parametrize(
    "changes",
    [{"timeout": 10**400}, {"tags": True}, {"name": ["x"]}, {"jitter": 1e300}],
)
def test_update_refuses_what_add_job_refuses_and_keeps_the_job_unchanged(
    make_scheduler: Callable[..., Scheduler], changes: dict[str, Any]
) -> None:
    sched = make_scheduler()
    job = sched.add_job("j", trigger="* * * * *", handler=noop, timeout=5)
    with pytest.raises(JobConfigError) as info:
        sched.update("j", **changes)
    assert info.value.field == next(iter(changes))
    assert sched.job("j").job is job


@pytest.mark.parametrize(
    "options",
    [
        {"handler": "a" * 100_000},
        {"handler": "pkg.mod:attr\n" * 1000},
        {"overlap": "x" * 100_000},
        {"misfire": "x\n" * 100_000},
        {"retry": {"max_attempts": 2, "strategy": "s" * 100_000}},
        {"queue": "q\n" * 100_000},
    ],
)
def test_error_messages_about_huge_values_stay_short_and_on_one_line(
    make_scheduler: Callable[..., Scheduler], options: dict[str, Any]
) -> None:
    options = {"handler": noop, **options}
    with pytest.raises(JobConfigError) as info:
        make_scheduler().add_job("j", trigger="* * * * *", **options)
    message = str(info.value)
    assert len(message) < 1_100 and "\n" not in message, message[:200]


async def test_a_pause_note_that_is_not_text_or_too_long_is_refused_at_pause(
    sched: Scheduler, clock: VirtualClock
) -> None:
    sched.add_job("j", trigger=Interval(seconds=1), handler=noop)
    async with sched:
        for note in (["travelling"], 5, "x" * 1001):
            # A list was accepted, then failed the store write in the background.
            with pytest.raises(JobConfigError) as info:
                sched.pause("j", note=note)  # type: ignore[arg-type]
            assert info.value.field == "note"
        assert not sched.job("j").paused
        sched.pause("j", note="two\nlines are fine in a note")
        assert sched.job("j").pause_note == "two\nlines are fine in a note"


async def test_a_non_string_job_id_is_not_found_rather_than_a_type_error(
    sched: Scheduler,
) -> None:
    sched.add_job("j", trigger=Interval(seconds=1), handler=noop)
    async with sched:
        with pytest.raises(JobNotFoundError):  # was TypeError: unhashable type: 'list'
            await sched.run_now(["j"])  # type: ignore[arg-type]
        for call in (sched.pause, sched.resume, sched.remove, sched.job):
            with pytest.raises(JobNotFoundError):
                call(["j"])  # type: ignore[operator]


# -- handlers that misbehave -----------------------------------------------------------
class Unshowable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class TailRaises(Exception):
    @property
    def output_tail(self) -> str:
        raise RuntimeError("no tail for you")


class TailUnshowable(Exception):
    output_tail = Unshowable()


async def raises_with_an_unreadable_tail() -> None:
    raise TailRaises("boom")


async def raises_with_an_unshowable_tail() -> None:
    raise TailUnshowable("boom")


def raises_stop_iteration() -> None:
    raise StopIteration


@pytest.mark.parametrize("timeout_s", [None, 5])
async def test_a_handler_whose_error_has_an_unreadable_output_tail_fails_its_run(
    sched: Scheduler, clock: VirtualClock, timeout_s: float | None
) -> None:
    # The runner's task died reading the tail: the runs stayed `running` until their lease
    # expired, and the job never fired again meanwhile (overlap skip).
    for name, fn in [("property", raises_with_an_unreadable_tail),
                     ("str", raises_with_an_unshowable_tail)]:  # fmt: skip
        sched.add_job(name, trigger=Interval(seconds=10), handler=fn, timeout=timeout_s)
    async with sched:
        await clock.advance(30)
        runs = {name: await all_runs(sched, name) for name in ("property", "str")}
    assert [r.status for r in runs["property"]] == [RunStatus.failed] * 3
    assert [r.status for r in runs["str"]] == [RunStatus.failed] * 3
    assert runs["property"][0].error == "TailRaises: boom"
    assert runs["str"][0].output_tail == "<Unshowable object: str() raised>"


async def test_a_sync_handler_raising_stop_iteration_fails_its_run_and_fires_again(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # StopIteration cannot be set on an asyncio future: the run waited forever.
    sched.add_job("j", trigger=Interval(seconds=10), handler=raises_stop_iteration)
    async with sched:
        for _ in range(2):
            await clock.advance(10)
            await asyncio.wait_for(sched.drain(), timeout=30)  # real seconds: a thread runs
        runs = await all_runs(sched, "j")
    assert [r.status for r in runs] == [RunStatus.failed] * 2
    assert runs[0].error == "RuntimeError: raises_stop_iteration raised StopIteration"


async def test_an_exponential_retry_delay_past_float_range_waits_max_delay(
    sched: Scheduler, clock: VirtualClock
) -> None:
    # 1e300 ** 2 raised OverflowError in the runner: the run stayed `running`.
    calls: list[float] = []

    async def fails() -> None:
        calls.append((clock.now() - T0).total_seconds())
        raise RuntimeError("flaky")

    retry = Retry(max_attempts=4, base_delay=1, multiplier=1e300, max_delay=2)
    sched.add_job("j", trigger=ONCE, handler=fails, retry=retry)
    async with sched:
        await clock.advance(30)
        (run,) = await all_runs(sched, "j")
    assert run.status == RunStatus.failed and run.attempt == 4
    assert calls == [1, 2, 4, 6]


async def cancels_its_own_task() -> None:
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    await asyncio.sleep(0)


@pytest.mark.parametrize("timeout_s", [None, 5])
async def test_a_handler_that_cancels_its_own_task_fails_its_run_and_the_job_fires_again(
    sched: Scheduler, clock: VirtualClock, timeout_s: float | None
) -> None:
    # Without a timeout it was recorded `cancelled: stopped`, as if the scheduler had stopped.
    sched.add_job("j", trigger=Interval(seconds=10), handler=cancels_its_own_task,
                  timeout=timeout_s)  # fmt: skip
    async with sched:
        await clock.advance(20)
        runs = await all_runs(sched, "j")
    assert [(r.status, r.error) for r in runs] == [
        (RunStatus.failed, "HandlerError: the handler cancelled itself")
    ] * 2
