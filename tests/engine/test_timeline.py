"""`Timeline`: the heap of next wakes, with lazily dropped stale items."""

from __future__ import annotations

from agentcron.engine.active import JobEntry
from agentcron.engine.timeline import Timeline
from agentcron.handlers import Command
from agentcron.jobs import build_job


def entry(job_id: str) -> JobEntry:
    return JobEntry(job=build_job(job_id, trigger="* * * * *", handler=Command(["true"])))


def test_equal_wakes_pop_in_push_order() -> None:
    timeline = Timeline()
    entries = [entry(f"j{i}") for i in range(5)]
    for e in reversed(entries[:3]):
        timeline.push(e, 10.0)
    for e in entries[3:]:
        timeline.push(e, 5.0)
    assert [e.job.id for e in timeline.pop_due(10.0)] == ["j3", "j4", "j2", "j1", "j0"]
    assert timeline.next_wake() is None


def test_a_rescheduled_or_dropped_entry_wakes_once_at_its_latest_time() -> None:
    timeline = Timeline()
    moved, dropped, kept = entry("moved"), entry("dropped"), entry("kept")
    timeline.push(moved, 1.0)
    timeline.push(dropped, 2.0)
    timeline.push(kept, 3.0)
    timeline.push(moved, 4.0)
    timeline.drop(dropped)
    assert timeline.next_wake() == 3.0  # the stale items on top are gone
    assert timeline.pop_due(3.5) == [kept]
    assert timeline.pop_due(3.5) == []  # popped entries are not due again
    assert timeline.pop_due(10.0) == [moved]
    timeline.push(dropped, 11.0)  # a dropped entry can be scheduled again
    assert timeline.pop_due(11.0) == [dropped]
    assert len(timeline) == 0
