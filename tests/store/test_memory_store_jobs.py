"""`MemoryStore` job rows stand for their own "added" audit entry (no `AuditEntry` object per
added job): the audit must read exactly as if each add had been recorded as an entry."""

from __future__ import annotations

from datetime import UTC, datetime

from agentcron.models import AuditEntry, StoredJob
from agentcron.store.memory import MemoryStore, _Stamps

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def test_an_added_entry_keeps_the_definition_and_time_of_the_add() -> None:
    store = MemoryStore()
    saved = await store.save_job(StoredJob(id="digest", definition={"v": 1}), actor="code")
    await store.save_job(StoredJob(id="digest", definition={"v": 2}), actor="api")
    await store.set_paused("digest", True, actor="cli")
    *_, added = await store.list_audit("digest")
    created_at = saved.created_at
    assert created_at is not None
    assert added == AuditEntry(
        job_id="digest",
        action="added",
        actor="code",
        at=created_at,
        before=None,
        after={"v": 1},
    )


async def test_a_job_removed_and_added_again_has_both_added_entries() -> None:
    store = MemoryStore()
    await store.save_job(StoredJob(id="a", definition={"v": 1}), actor="code")
    await store.save_job(StoredJob(id="b", definition={"v": 1}), actor="code")
    await store.delete_job("a", actor="api")
    await store.save_job(StoredJob(id="a", definition={"v": 2}), actor="config")
    entries = await store.list_audit()
    assert [(e.job_id, e.action, e.actor, e.after) for e in entries] == [
        ("a", "added", "config", {"v": 2}),
        ("a", "removed", "api", None),
        ("b", "added", "code", {"v": 1}),
        ("a", "added", "code", {"v": 1}),
    ]
    assert [e.action for e in await store.list_audit("a", limit=2)] == ["added", "removed"]
    assert await store.list_audit(limit=0) == []


async def test_an_add_with_a_given_creation_time_is_audited_at_the_time_of_the_add() -> None:
    store = MemoryStore()
    saved = await store.save_job(
        StoredJob(id="digest", definition={}, created_at=T0), actor="import"
    )
    (added,) = await store.list_audit("digest")
    assert saved.created_at == T0
    assert (added.action, added.actor, added.at) == ("added", "import", saved.updated_at)


def test_stamps_taken_within_one_millisecond_are_one_datetime_to_the_millisecond() -> None:
    # A burst of adds must not keep one 48-byte datetime per job (100,000 jobs: 4.8 MB).
    ns = [1_772_366_400_123_056_789]
    stamps = _Stamps(lambda: ns[0])
    first = stamps.now()
    ns[0] += 800_000  # 0.8 ms later, in the same millisecond
    assert stamps.now() is first
    assert first == datetime(2026, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)
    ns[0] += 200_000  # the next millisecond
    second = stamps.now()
    assert second == datetime(2026, 3, 1, 12, 0, 0, 124_000, tzinfo=UTC)
    assert second is not first
