"""`Timeline`: the heap of next wakes, with lazily dropped stale items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from agentcron.engine.active import JobEntry
from agentcron.engine.timeline import Timeline
from agentcron.handlers import Command
from agentcron.jobs import build_job

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def entry(job_id: str) -> JobEntry:
    return JobEntry(job=build_job(job_id, trigger="* * * * *", handler=Command(["true"])))


def test_equal_wakes_pop_in_push_order() -> None:
    timeline = Timeline()
    entries = [entry(f"j{i}") for i in range(5)]
    for e in reversed(entries[:3]):
        timeline.push(e, at(10.0))
    for e in entries[3:]:
        timeline.push(e, at(5.0))
    assert [e.job.id for e in timeline.pop_due(at(10.0))] == ["j3", "j4", "j2", "j1", "j0"]
    assert timeline.next_wake() is None


def test_a_rescheduled_or_dropped_entry_wakes_once_at_its_latest_time() -> None:
    timeline = Timeline()
    moved, dropped, kept = entry("moved"), entry("dropped"), entry("kept")
    timeline.push(moved, at(1.0))
    timeline.push(dropped, at(2.0))
    timeline.push(kept, at(3.0))
    timeline.push(moved, at(4.0))
    timeline.drop(dropped)
    assert timeline.next_wake() == at(3.0)  # the stale items on top are gone
    assert timeline.pop_due(at(3.5)) == [kept]
    assert timeline.pop_due(at(3.5)) == []  # popped entries are not due again
    assert timeline.pop_due(at(10.0)) == [moved]
    timeline.push(dropped, at(11.0))  # a dropped entry can be scheduled again
    assert timeline.pop_due(at(11.0)) == [dropped]
    assert len(timeline) == 0


def test_one_instant_in_two_time_zones_is_one_wake() -> None:
    timeline = Timeline()
    utc, berlin = entry("utc"), entry("berlin")
    timeline.push(utc, at(10))
    timeline.push(berlin, at(10).astimezone(timezone(timedelta(hours=1))))
    assert timeline.pop_due(at(9.9)) == []
    assert timeline.pop_due(at(10)) == [utc, berlin]


def test_the_count_at_an_instant_leaves_out_entries_moved_or_dropped_from_it() -> None:
    timeline = Timeline()
    entries = [entry(f"j{i}") for i in range(4)]
    for e in entries:
        timeline.push(e, at(10.0))
    timeline.push(entries[0], at(20.0))
    timeline.drop(entries[1])
    assert timeline.count_at(at(10.0)) == 2
    assert timeline.count_at(at(20.0)) == 1
    assert timeline.count_at(at(30.0)) == 0
