"""`MemoryStore.set_job_state` builds the new `StoredJob` by hand (hot path): it must change
only the scheduling state, whatever fields `StoredJob` has."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from agentcron.models import StoredJob
from agentcron.store.memory import MemoryStore

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
    # Every field of StoredJob is compared (a new field must be carried over too).
    assert {f.name for f in dataclasses.fields(StoredJob)} == {
        "id",
        "definition",
        "paused",
        "pause_note",
        "next_run",
        "last_fire",
        "created_at",
        "updated_at",
        "version",
    }
