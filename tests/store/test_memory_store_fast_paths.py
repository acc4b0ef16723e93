"""`MemoryStore` keeps each job in a mutable row and hands out `StoredJob` snapshots (the
engine writes the scheduling state on every fire): `set_job_state` must change only that
state, the row must carry every field of `StoredJob`, and every other operation sees it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from agentcron.models import StoredJob
from agentcron.store.memory import MemoryStore, _JobRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_set_job_state_changes_only_next_run_and_last_fire() -> None:
    store = MemoryStore()
    await store.save_job(StoredJob(id="digest", definition={"trigger": "0 9 * * *"}), actor="t")
    await store.set_paused("digest", True, note="away", actor="t")
    before = await store.get_job("digest")
    assert before is not None
    await store.set_job_state("digest", next_run=T0 + timedelta(hours=1), last_fire=T0)
    after = await store.get_job("digest")
    expected = dataclasses.replace(before, next_run=T0 + timedelta(hours=1), last_fire=T0)
    assert after == expected
    # The row carries every field of StoredJob (a new field must be added to it too).
    assert [f.name for f in dataclasses.fields(_JobRow)] == [
        f.name for f in dataclasses.fields(StoredJob)
    ]


async def test_a_snapshot_does_not_change_when_the_job_changes_later() -> None:
    store = MemoryStore()
    await store.save_job(StoredJob(id="digest", definition={"v": 1}), actor="t")
    snapshot = await store.get_job("digest")
    await store.set_job_state("digest", next_run=T0, last_fire=T0)
    await store.set_paused("digest", True, actor="t")
    assert snapshot is not None
    assert (snapshot.next_run, snapshot.last_fire, snapshot.paused) == (None, None, False)


async def test_state_written_by_set_job_state_survives_every_other_job_operation() -> None:
    store = MemoryStore()
    await store.save_job(StoredJob(id="digest", definition={"v": 1}), actor="t")
    await store.set_job_state("digest", next_run=T0 + timedelta(hours=1), last_fire=T0)
    paused = await store.set_paused("digest", True, actor="t")
    assert paused is not None and paused.last_fire == T0
    await store.set_job_state("digest", next_run=None, last_fire=T0 + timedelta(hours=1))
    updated = await store.save_job(StoredJob(id="digest", definition={"v": 2}), actor="t")
    assert updated.version == 2 and updated.paused
    assert updated.last_fire == T0 + timedelta(hours=1) and updated.next_run is None
    await store.set_job_state("digest", next_run=T0, last_fire=T0)
    assert [(j.next_run, j.last_fire) for j in await store.list_jobs()] == [(T0, T0)]
    assert await store.delete_job("digest", actor="t")
    await store.set_job_state("digest", next_run=T0, last_fire=T0)  # unknown id: ignored
    assert await store.get_job("digest") is None
    await store.save_job(StoredJob(id="digest", definition={"v": 3}), actor="t")
    fresh = await store.get_job("digest")
    assert fresh is not None and fresh.last_fire is None and fresh.next_run is None


async def test_save_job_of_a_new_job_keeps_every_given_field_and_stamps_once() -> None:
    store = MemoryStore()
    given = StoredJob(
        id="digest",
        definition={"v": 1},
        paused=True,
        pause_note="away",
        next_run=T0 + timedelta(hours=1),
        last_fire=T0,
        created_at=T0 - timedelta(days=1),
        version=7,
    )
    saved = await store.save_job(given, actor="t")
    assert saved.updated_at is not None
    assert saved == dataclasses.replace(given, updated_at=saved.updated_at, version=1)
    (entry,) = await store.list_audit("digest")
    assert entry.action == "added" and entry.at == saved.updated_at
    fresh = await store.save_job(StoredJob(id="fresh", definition={}), actor="t")
    assert fresh.created_at is not None and fresh.created_at == fresh.updated_at
