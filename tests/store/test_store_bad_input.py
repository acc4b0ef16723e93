"""Bad input given to any store: a `ValueError` naming the problem, nothing stored, and the
store still usable. Run over every backend by the `store` fixture."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.base import Store
from agentcron.store.sqlite import SqliteStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NAIVE = datetime(2026, 3, 1, 12, 0)
# Valid where it is, but before year 1 or after year 9999 once converted to UTC.
TOO_LATE = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
TOO_EARLY = datetime(1, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=5)))


def a_run(run_id: str = "r1", **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "run_id": run_id,
        "job_id": "digest",
        "scheduled_for": T0,
        "status": RunStatus.succeeded,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
        "node_id": "node-a",
    }
    values.update(fields)
    return RunRecord(**values)  # type: ignore[arg-type]


Call = Callable[[Store, datetime], Awaitable[object]]
DATETIME_CALLS: dict[str, Call] = {
    "record_run scheduled_for": lambda s, d: s.record_run(a_run(scheduled_for=d)),
    "record_run started_at": lambda s, d: s.record_run(a_run(started_at=d)),
    "record_run lease": lambda s, d: s.record_run(
        a_run(status=RunStatus.running, finished_at=None, lease_expires_at=d)
    ),
    "claim_fire": lambda s, d: s.claim_fire("digest", d, "node-a", now=T0),
    "set_job_state": lambda s, d: s.set_job_state("digest", next_run=d, last_fire=None),
    "save_job created_at": lambda s, d: s.save_job(
        StoredJob(id="other", definition={}, created_at=d), actor="api"
    ),
    "prune_runs": lambda s, d: s.prune_runs(older_than=d),
    "list_runs since": lambda s, d: s.list_runs(RunQuery(since=d)),
    "renew_lease": lambda s, d: s.renew_lease("r1", "node-a", 0, until=d),
    "interrupt_expired": lambda s, d: s.interrupt_expired(d),
}


async def assert_unchanged(store: Store) -> None:
    """The store holds only what `seed` wrote, and still reads and sorts its runs."""
    assert [r.run_id for r in await store.list_runs(RunQuery())] == ["r0"]
    assert [j.id for j in await store.list_jobs()] == ["digest"]
    assert await store.interrupt_expired(T0) == []


async def seed(store: Store) -> None:
    await store.save_job(StoredJob(id="digest", definition={"trigger": "@daily"}), actor="api")
    await store.record_run(a_run("r0", scheduled_for=T0 - timedelta(minutes=1)))


@pytest.mark.parametrize("call", list(DATETIME_CALLS))
async def test_a_naive_datetime_is_refused_with_a_value_error(store: Store, call: str) -> None:
    await seed(store)
    with pytest.raises(ValueError, match="naive"):
        await DATETIME_CALLS[call](store, NAIVE)
    await assert_unchanged(store)


@pytest.mark.parametrize("call", list(DATETIME_CALLS))
@pytest.mark.parametrize("when", [TOO_LATE, TOO_EARLY], ids=["after-9999", "before-1"])
async def test_a_datetime_outside_years_1_to_9999_in_utc_is_refused_with_a_value_error(
    store: Store, call: str, when: datetime
) -> None:
    await seed(store)
    with pytest.raises(ValueError, match="out of range"):
        await DATETIME_CALLS[call](store, when)
    await assert_unchanged(store)


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), b"bytes", complex(1, 2)],
    ids=["set", "object", "bytes", "complex"],
)
async def test_a_definition_that_is_not_json_is_refused_with_a_value_error_naming_the_job(
    store: Store, value: object
) -> None:
    await seed(store)
    bad = StoredJob(id="digest", definition={"trigger": "@daily", "x": [value]})
    with pytest.raises(ValueError, match="'digest'"):
        await store.save_job(bad, actor="api")
    with pytest.raises(ValueError, match="'new'"):
        await store.save_job(bad.evolve(id="new"), actor="api")
    await assert_unchanged(store)
    assert (await store.get_job("digest")).definition == {"trigger": "@daily"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.list_runs(RunQuery(limit=-1)),
        lambda s: s.list_runs(RunQuery(offset=-1)),
        lambda s: s.prune_runs(keep_per_job=-1),
    ],
    ids=["list limit", "list offset", "prune keep_per_job"],
)
async def test_a_negative_limit_offset_or_keep_per_job_is_refused_with_a_value_error(
    store: Store, call: Callable[[Store], Awaitable[object]]
) -> None:
    await seed(store)
    with pytest.raises(ValueError, match="-1"):
        await call(store)
    await assert_unchanged(store)


async def test_a_write_sqlite_cannot_encode_fails_alone_and_the_writes_queued_with_it_commit(
    tmp_path: Path,
) -> None:
    # An error message holding a file name that is not UTF-8 (os.fsdecode's surrogates).
    async with SqliteStore(tmp_path / "scheduler.db") as store:
        results = await asyncio.gather(
            store.record_run(a_run("good")),
            store.record_run(a_run("bad", error="No such file: '/tmp/\udcff'")),
            store.record_run(a_run("huge", fence=2**70)),
            store.set_state("key", "value"),
            return_exceptions=True,
        )
        assert results[0] is True and results[3] is None
        assert isinstance(results[1], ValueError) and isinstance(results[2], ValueError)
        assert [r.run_id for r in await store.list_runs(RunQuery())] == ["good"]
        assert await store.get_state("key") == "value"
