"""`MemoryStore` bounds each job's run history, indexes runs by job and keeps running runs apart."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from agentcron.models import FireStart, RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.memory import MemoryStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_run(
    run_id: str,
    second: int,
    *,
    job_id: str = "digest",
    status: RunStatus = RunStatus.succeeded,
    lease_s: float | None = None,
) -> RunRecord:
    at = T0 + timedelta(seconds=second)
    return RunRecord(
        run_id=run_id,
        job_id=job_id,
        scheduled_for=at,
        status=status,
        started_at=at,
        finished_at=at if status.is_final else None,
        node_id="node-a",
        lease_expires_at=at + timedelta(seconds=lease_s) if lease_s is not None else None,
    )


async def run_ids(store: MemoryStore, job_id: str) -> list[str]:
    return [r.run_id for r in await store.list_runs(RunQuery(job_id=job_id, limit=10_000))]


async def test_a_job_over_the_cap_keeps_its_newest_final_runs_and_its_running_run() -> None:
    store = MemoryStore(max_runs_per_job=10)
    await store.record_run(a_run("stuck", 0, status=RunStatus.running, lease_s=3600))
    for i in range(1, 11):  # 10 final runs: at the cap, nothing dropped
        await store.record_run(a_run(f"r{i:02}", i))
    assert len(await run_ids(store, "digest")) == 11
    await store.record_run(a_run("r11", 11))  # the 11th final run: 10 + 10 // 10 -> trim
    assert await run_ids(store, "digest") == [f"r{i:02}" for i in range(11, 1, -1)] + ["stuck"]
    assert await store.get_run("r01") is None
    stuck = await store.get_run("stuck")
    assert stuck is not None and stuck.status == RunStatus.running


async def test_the_cap_drops_only_the_runs_of_the_job_over_it() -> None:
    store = MemoryStore(max_runs_per_job=10)
    for i in range(5):
        await store.record_run(a_run(f"other-{i}", i, job_id="other"))
    for i in range(11):
        await store.record_run(a_run(f"r{i:02}", 100 + i))
    assert len(await run_ids(store, "digest")) == 10
    assert await run_ids(store, "other") == [f"other-{i}" for i in range(4, -1, -1)]
    assert await store.count_runs(RunQuery()) == 15


async def test_the_oldest_runs_are_dropped_by_scheduled_time_whatever_order_they_came_in() -> None:
    store = MemoryStore(max_runs_per_job=4)
    for second in (5, 1, 4, 0, 3):  # recorded out of order; the 5th final run trims
        await store.record_run(a_run(f"s{second}", second))
    assert await run_ids(store, "digest") == ["s5", "s4", "s3", "s1"]
    for second in (6, 7, 8, 9, 10):  # back in order
        await store.record_run(a_run(f"s{second}", second))
    assert await run_ids(store, "digest") == ["s10", "s9", "s8", "s7"]


async def test_runs_of_one_occurrence_are_dropped_oldest_run_id_first() -> None:
    store = MemoryStore(max_runs_per_job=2)
    for run_id in ("c", "a", "b"):
        await store.record_run(a_run(run_id, 0))
    assert await run_ids(store, "digest") == ["c", "b"]


async def test_a_run_that_becomes_final_counts_towards_the_cap() -> None:
    store = MemoryStore(max_runs_per_job=3)
    for i in range(3):
        await store.record_run(a_run(f"r{i}", i))
    running = a_run("r3", 3, status=RunStatus.running, lease_s=60)
    await store.record_run(running)
    assert len(await run_ids(store, "digest")) == 4
    await store.record_run(running.evolve(status=RunStatus.failed, lease_expires_at=None))
    assert await run_ids(store, "digest") == ["r3", "r2", "r1"]


async def test_runs_interrupted_on_an_expired_lease_count_towards_the_cap() -> None:
    store = MemoryStore(max_runs_per_job=3)
    for i in range(3):
        await store.record_run(a_run(f"r{i}", i))
    await store.record_run(a_run("r3", 3, status=RunStatus.running, lease_s=60))
    (interrupted,) = await store.interrupt_expired(T0 + timedelta(hours=1))
    assert interrupted.run_id == "r3"
    assert await run_ids(store, "digest") == ["r3", "r2", "r1"]


@pytest.mark.parametrize(
    "caps", [{"max_runs_per_job": 2}, {"max_runs_per_job": None, "max_runs": 2}]
)
async def test_a_dropped_run_takes_its_fire_claim_with_it(caps: dict[str, int | None]) -> None:
    store = MemoryStore(**caps)  # type: ignore[arg-type]
    for i in range(3):  # the third final run trims back to 2 (the job's or the table's)
        assert await store.claim_fire("digest", a_run("x", i).scheduled_for, "node-a", now=T0)
        await store.record_run(a_run(f"r{i}", i))
    oldest, kept = a_run("x", 0).scheduled_for, a_run("x", 1).scheduled_for
    assert await store.claim_fire("digest", oldest, "node-b", now=T0)
    assert not await store.claim_fire("digest", kept, "node-b", now=T0)


async def test_without_a_cap_every_run_is_kept() -> None:
    store = MemoryStore(max_runs_per_job=None)
    for i in range(2_500):
        await store.record_run(a_run(f"r{i:04}", i))
    assert await store.count_runs(RunQuery(job_id="digest")) == 2_500
    assert (await store.run_stats("digest")).total == 2_500


async def test_the_default_cap_is_1000_final_runs_per_job() -> None:
    store = MemoryStore()
    assert store.max_runs_per_job == 1000
    for i in range(1_100):
        await store.record_run(a_run(f"r{i:04}", i))
    assert await store.count_runs(RunQuery(job_id="digest")) == 1000
    (newest,) = await store.list_runs(RunQuery(job_id="digest", limit=1))
    assert newest.run_id == "r1099"


@pytest.mark.parametrize("cap", [0, -1])
@pytest.mark.parametrize("name", ["max_runs_per_job", "max_runs"])
def test_a_cap_below_one_is_refused(name: str, cap: int) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be at least 1 or None, not {cap}$"):
        MemoryStore(**{name: cap})  # type: ignore[arg-type]


async def test_the_whole_table_keeps_its_newest_final_runs_of_any_job() -> None:
    store = MemoryStore(max_runs_per_job=None, max_runs=10)
    await store.record_run(a_run("stuck", 0, job_id="a", status=RunStatus.running, lease_s=60))
    for i in range(1, 11):  # 10 final runs, alternating jobs: at the cap, nothing dropped
        await store.record_run(a_run(f"r{i:02}", i, job_id="ab"[i % 2]))
    assert await store.count_runs(RunQuery()) == 11
    await store.record_run(a_run("r11", 11, job_id="b"))  # 11 = 10 + 10 // 10: trim to 10
    assert await store.count_runs(RunQuery()) == 11  # 10 final + the running one
    assert await store.get_run("r01") is None
    assert await run_ids(store, "a") == ["r10", "r08", "r06", "r04", "r02", "stuck"]
    assert await run_ids(store, "b") == ["r11", "r09", "r07", "r05", "r03"]
    assert (await store.run_stats("b")).total == 5


async def test_both_bounds_together_keep_exact_counts_through_prunes_and_deletes() -> None:
    store = MemoryStore(max_runs_per_job=5, max_runs=12)
    for i in range(40):
        await store.record_run(a_run(f"r{i:02}", i, job_id="abc"[i % 3]))
        if i == 20:
            await store.prune_runs(keep_per_job=2)
        if i == 30:
            await store.save_job(StoredJob(id="c", definition={}), actor="test")
            await store.delete_job("c", actor="test")
    counts = {j: await store.count_runs(RunQuery(job_id=j)) for j in "abc"}
    # Every bound holds, and the table's count of final runs matches what is stored.
    assert all(n <= 5 + 5 // 10 + 1 for n in counts.values())
    assert sum(counts.values()) <= 12 + 12 // 10 + 1
    assert store._runs.finals == await store.count_runs(RunQuery())
    newest = [r.run_id for r in await store.list_runs(RunQuery(limit=3))]
    assert newest == ["r39", "r38", "r37"]


async def test_the_default_table_bound_is_100_000_final_runs() -> None:
    assert MemoryStore().max_runs == 100_000
    store = MemoryStore(max_runs_per_job=None, max_runs=None)
    for i in range(2_000):
        await store.record_run(a_run(f"r{i:04}", i, job_id=f"j{i}"))
    assert await store.count_runs(RunQuery()) == 2_000


async def test_only_the_expired_running_runs_are_interrupted_after_many_finished_runs() -> None:
    store = MemoryStore(max_runs_per_job=50)
    for i in range(2_000):
        run = a_run(f"r{i:04}", i, job_id=f"job-{i % 7}", status=RunStatus.running, lease_s=60)
        await store.record_run(run)
        await store.record_run(run.evolve(status=RunStatus.succeeded, lease_expires_at=None))
    await store.record_run(a_run("expired", 2_000, status=RunStatus.running, lease_s=10))
    await store.record_run(a_run("alive", 2_000, status=RunStatus.running, lease_s=600))
    await store.record_run(a_run("queued", 2_000, status=RunStatus.scheduled))
    interrupted = await store.interrupt_expired(T0 + timedelta(seconds=2_100))
    assert [r.run_id for r in interrupted] == ["expired"]
    assert interrupted[0].status == RunStatus.interrupted and interrupted[0].fence == 1
    assert await store.interrupt_expired(T0 + timedelta(seconds=2_100)) == []


async def test_a_run_that_succeeds_leaves_the_running_index() -> None:
    store = MemoryStore()
    run = a_run("r1", 0, status=RunStatus.running, lease_s=60)
    await store.record_run(run)
    assert list(store._runs.running) == ["r1"]
    await store.record_run(run.evolve(status=RunStatus.succeeded, lease_expires_at=None))
    assert list(store._runs.running) == []
    assert await store.interrupt_expired(T0 + timedelta(days=1)) == []


async def test_a_renewed_lease_is_interrupted_only_once_it_expires_again() -> None:
    store = MemoryStore()
    await store.record_run(a_run("r1", 0, status=RunStatus.running, lease_s=60))
    assert await store.renew_lease("r1", "node-a", 0, until=T0 + timedelta(seconds=300))
    assert await store.interrupt_expired(T0 + timedelta(seconds=120)) == []
    (interrupted,) = await store.interrupt_expired(T0 + timedelta(seconds=300))
    assert interrupted.run_id == "r1" and list(store._runs.running) == []


async def test_a_run_recorded_under_another_job_moves_to_that_jobs_history() -> None:
    store = MemoryStore()
    await store.record_run(a_run("r1", 0, job_id="old"))
    await store.record_run(a_run("r1", 0, job_id="new"))
    assert await run_ids(store, "old") == []
    assert await run_ids(store, "new") == ["r1"]


async def test_deleting_a_job_forgets_its_running_runs() -> None:
    store = MemoryStore()
    await store.save_job(StoredJob(id="digest", definition={}), actor="t")
    await store.record_run(a_run("r1", 0, status=RunStatus.running, lease_s=60))
    assert await store.delete_job("digest", actor="t")
    assert await store.interrupt_expired(T0 + timedelta(days=1)) == []
    assert await store.count_runs(RunQuery()) == 0


async def test_a_full_collection_walks_the_claims_of_a_busy_store_per_job_not_per_claim() -> None:
    # A full garbage collection visits what tracked containers hold. Claims keyed by
    # (job id, time) tuples in one tracked dict made it visit each claim: 100,000 of them
    # at 10,000 jobs firing every second, in every full collection.
    store = MemoryStore()
    jobs, seconds = 51, 3
    for second in range(seconds):
        at = T0 + timedelta(seconds=second)
        assert await store.claim_fire("digest", at, "node-a", now=at)
        fires = [FireStart(f"job-{i}", at, None, at) for i in range(jobs - 1)]
        assert await store.start_fires(fires, "node-a", now=at) == [True] * (jobs - 1)
    claims = store._runs.claims
    walked = [claims, *(o for o in gc.get_referents(claims) if gc.is_tracked(o))]
    assert sum(len(gc.get_referents(o)) for o in walked) <= 2 * jobs


class _Unreadable(dict):  # type: ignore[type-arg]
    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("read every job's claims")


async def test_deleting_a_job_drops_its_claims_without_reading_the_other_jobs() -> None:
    # Reading them all made deleting N jobs from a busy store take N x all claims.
    store = MemoryStore()
    for job_id in ("digest", "backup"):
        await store.save_job(StoredJob(id=job_id, definition={}), actor="t")
        assert await store.claim_fire(job_id, T0, "node-a", now=T0)
    store._runs.claims = _Unreadable(store._runs.claims)
    assert await store.delete_job("digest", actor="t")
    assert await store.claim_fire("digest", T0, "node-b", now=T0)
    assert not await store.claim_fire("backup", T0, "node-b", now=T0)


async def test_pruning_by_hand_then_recording_more_keeps_the_cap_exact() -> None:
    store = MemoryStore(max_runs_per_job=10)
    for i in range(10):
        await store.record_run(a_run(f"r{i:02}", i))
    assert await store.prune_runs(keep_per_job=4) == 6
    for i in range(10, 17):  # 4 + 7 = 11 final runs: trimmed back to 10
        await store.record_run(a_run(f"r{i:02}", i))
    assert await run_ids(store, "digest") == [f"r{i:02}" for i in range(16, 6, -1)]


async def test_a_run_moving_in_and_out_of_running_is_stored_once_and_counted_once() -> None:
    # Running runs live apart from the others (`RunTable.running`): a run id is in one of
    # the two dicts, and the count of final runs follows each move.
    store = MemoryStore()
    table = store._runs
    run = a_run("r1", 0, status=RunStatus.scheduled)
    steps = [
        (run, False),
        (run.evolve(status=RunStatus.running, lease_expires_at=T0 + timedelta(minutes=1)), True),
        (run.evolve(status=RunStatus.failed), False),
        # Taken over by another node (a higher fence), running again, then interrupted.
        (run.evolve(status=RunStatus.running, fence=1, attempt=2), True),
        (run.evolve(status=RunStatus.interrupted, fence=1, attempt=2), False),
    ]
    for record, running in steps:
        assert await store.record_run(record)
        assert ("r1" in table.running) is running
        assert ("r1" in table._rows) is not running
        stored = await store.get_run("r1")
        assert stored == record
        assert await run_ids(store, "digest") == ["r1"]
        assert table.finals == (1 if record.status.is_final else 0)
    # An older fence is refused wherever the run is, and changes nothing.
    assert not await store.record_run(run.evolve(status=RunStatus.running, fence=0))
    assert "r1" not in table.running and table.finals == 1


async def test_a_running_run_without_a_lease_is_never_interrupted() -> None:
    store = MemoryStore()
    await store.record_run(a_run("unleased", 0, status=RunStatus.running))
    assert await store.interrupt_expired(T0 + timedelta(days=365)) == []
    assert not await store.renew_lease("missing", "node-a", 0, until=T0)
    assert not await store.renew_lease("unleased", "node-b", 0, until=T0)


async def test_the_runs_written_with_claims_are_indexed_like_any_other() -> None:
    # `start_fires` writes its runs without looking for earlier records (`record_new`):
    # they must still be listed, counted, trimmed and forgotten as `record_run` would.
    store = MemoryStore(max_runs_per_job=3)
    await store.save_job(StoredJob(id="digest", definition={}), actor="t")
    for second in range(6):
        at = T0 + timedelta(seconds=second)
        run = a_run(f"r{second}", second, status=RunStatus.running, lease_s=60)
        skip = a_run(f"s{second}", second, job_id="other", status=RunStatus.skipped)
        fires = [FireStart("digest", at, None, at, run), FireStart("other", at, None, at, skip)]
        assert await store.start_fires(fires, "node-a", now=at) == [True, True]
        assert await store.record_run(run.evolve(status=RunStatus.succeeded))
    # Trimmed back to 3 whenever a job holds 3 + 1 final runs, skips written with claims too.
    assert await run_ids(store, "digest") == ["r5", "r4", "r3"]
    assert await run_ids(store, "other") == ["s5", "s4", "s3"]
    assert store._runs.finals == 6 and store._runs.running == {}
    at = T0 + timedelta(seconds=6)
    running = a_run("r6", 6, status=RunStatus.running, lease_s=60)
    assert await store.start_fires([FireStart("digest", at, None, at, running)], "n", now=at)
    assert (await store.get_run("r6")) == running
    assert await store.delete_job("digest", actor="t")
    assert await store.get_run("r6") is None and store._runs.running == {}
    assert await store.interrupt_expired(T0 + timedelta(days=1)) == []
