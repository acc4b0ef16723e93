"""The `Store` contract (agentcron.store.base), run over every backend by the `store` fixture."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agentcron.models import (
    FireStart,
    NodeHeartbeat,
    RunQuery,
    RunRecord,
    RunStatus,
    StoredJob,
    interrupted_error,
)
from agentcron.store.base import JobConflictError, Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BERLIN_WINTER = timezone(timedelta(hours=1))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def a_job(job_id: str = "digest", **definition: object) -> StoredJob:
    return StoredJob(
        id=job_id, definition={"trigger": "0 9 * * *", "handler": "pkg.mod:send", **definition}
    )


def a_run(
    run_id: str,
    *,
    job_id: str = "digest",
    minute: float = 0,
    status: RunStatus = RunStatus.succeeded,
    duration_s: float | None = 1.0,
    **fields: object,
) -> RunRecord:
    started = at(minute) if duration_s is not None or status == RunStatus.running else None
    finished = (
        at(minute) + timedelta(seconds=duration_s)
        if duration_s is not None and status.is_final
        else None
    )
    values: dict[str, object] = {
        "run_id": run_id,
        "job_id": job_id,
        "scheduled_for": at(minute),
        "status": status,
        "started_at": started,
        "finished_at": finished,
        "node_id": "node-a",
    }
    values.update(fields)
    return RunRecord(**values)  # type: ignore[arg-type]


# -- jobs ----------------------------------------------------------------------------------------
def test_a_store_says_how_many_fires_it_takes_in_one_call(store: Store) -> None:
    assert isinstance(store.fire_batch, int) and store.fire_batch >= 1


async def test_a_new_job_is_stored_at_version_1_and_read_back_equal(store: Store) -> None:
    saved = await store.save_job(a_job(), actor="cli")
    assert saved.version == 1 and saved.created_at is not None and saved.updated_at is not None
    assert await store.get_job("digest") == saved
    assert saved.definition == a_job().definition


async def test_a_new_job_is_stored_with_the_scheduling_state_it_is_saved_with(
    store: Store,
) -> None:
    # The Redis store used to return the state without storing it.
    saved = await store.save_job(a_job().evolve(next_run=at(60), last_fire=at(0)), actor="code")
    assert saved.next_run == at(60) and saved.last_fire == at(0)
    assert await store.get_job("digest") == saved
    assert [j.next_run for j in await store.list_jobs()] == [at(60)]


async def test_jobs_saved_at_once_are_each_stored_and_audited_once(store: Store) -> None:
    ids = [f"job-{i:03d}" for i in range(200)]
    contested = [a_job("shared", timeout=t) for t in range(5)]
    saved = await asyncio.gather(
        *(store.save_job(a_job(job_id), actor="code") for job_id in ids),
        *(store.save_job(job, actor="code", conflict="keep") for job in contested),
    )
    assert [j.id for j in await store.list_jobs()] == sorted([*ids, "shared"])
    # One of the contested saves inserted; the others kept (and returned) its job.
    assert len({s.definition["timeout"] for s in saved[len(ids) :]}) == 1
    audit = await store.list_audit(limit=1000)
    assert sorted(e.job_id for e in audit if e.action == "added") == sorted([*ids, "shared"])


async def test_jobs_are_listed_by_id(store: Store) -> None:
    for job_id in ("zeta", "alpha", "mid"):
        await store.save_job(a_job(job_id), actor="config")
    assert [j.id for j in await store.list_jobs()] == ["alpha", "mid", "zeta"]


async def test_replace_updates_the_definition_but_keeps_pause_and_scheduling_state(
    store: Store,
) -> None:
    await store.save_job(a_job(), actor="config")
    await store.set_paused("digest", True, note="travelling", actor="cli")
    await store.set_job_state("digest", next_run=at(60), last_fire=at(0))
    updated = await store.save_job(a_job(timeout=30), actor="config")
    assert updated.version == 2
    assert updated.definition["timeout"] == 30
    assert updated.paused and updated.pause_note == "travelling"
    assert updated.next_run == at(60) and updated.last_fire == at(0)
    assert await store.get_job("digest") == updated


async def test_saving_an_identical_definition_writes_nothing(store: Store) -> None:
    first = await store.save_job(a_job(), actor="config")
    again = await store.save_job(a_job(), actor="config")
    assert again == first
    assert [e.action for e in await store.list_audit("digest")] == ["added"]


async def test_conflict_keep_returns_the_stored_job_untouched(store: Store) -> None:
    first = await store.save_job(a_job(), actor="config")
    kept = await store.save_job(a_job(timeout=5), actor="code", conflict="keep")
    assert kept == first == await store.get_job("digest")


async def test_conflict_error_raises_and_changes_nothing(store: Store) -> None:
    first = await store.save_job(a_job(), actor="config")
    with pytest.raises(JobConflictError):
        await store.save_job(a_job(timeout=5), actor="code", conflict="error")
    assert await store.get_job("digest") == first
    assert len(await store.list_audit("digest")) == 1


async def test_deleting_a_job_removes_its_runs_and_claims(store: Store) -> None:
    await store.save_job(a_job(), actor="api")
    await store.save_job(a_job("other"), actor="api")
    await store.record_run(a_run("r1"))
    await store.record_run(a_run("r2", job_id="other"))
    assert await store.claim_fire("digest", at(0), "node-a", now=at(0))
    assert await store.delete_job("digest", actor="api")
    assert await store.get_job("digest") is None
    assert await store.get_run("r1") is None
    assert await store.get_run("r2") is not None
    assert await store.claim_fire("digest", at(0), "node-a", now=at(0))  # claim went too
    assert not await store.delete_job("digest", actor="api")


async def test_pausing_stores_the_note_and_resuming_clears_it(store: Store) -> None:
    await store.save_job(a_job(), actor="api")
    paused = await store.set_paused("digest", True, note="on holiday", actor="api")
    assert paused is not None and paused.paused and paused.pause_note == "on holiday"
    resumed = await store.set_paused("digest", False, actor="api")
    assert resumed is not None and not resumed.paused and resumed.pause_note is None
    assert await store.get_job("digest") == resumed
    assert await store.set_paused("nope", True, actor="api") is None


async def test_job_state_of_an_unknown_job_is_ignored(store: Store) -> None:
    await store.set_job_state("nope", next_run=at(1), last_fire=at(0))
    assert await store.get_job("nope") is None


async def test_missing_ids_are_not_errors(store: Store) -> None:
    assert await store.get_job("nope") is None
    assert await store.get_run("nope") is None
    assert await store.get_state("nope") is None
    assert not await store.delete_node("nope")
    assert await store.list_audit("nope") == []


# -- audit ---------------------------------------------------------------------------------------
async def test_every_job_change_is_audited_newest_first_with_before_and_after(store: Store) -> None:
    await store.save_job(a_job(), actor="config")
    await store.save_job(a_job(timeout=9), actor="api")
    await store.set_paused("digest", True, actor="cli")
    await store.set_paused("digest", False, actor="cli")
    await store.delete_job("digest", actor="api")
    entries = await store.list_audit("digest")
    assert [(e.action, e.actor) for e in entries] == [
        ("removed", "api"),
        ("resumed", "cli"),
        ("paused", "cli"),
        ("updated", "api"),
        ("added", "config"),
    ]
    added, updated, removed = entries[4], entries[3], entries[0]
    assert added.before is None and added.after == a_job().definition
    assert updated.before == a_job().definition and updated.after == a_job(timeout=9).definition
    assert removed.before == a_job(timeout=9).definition and removed.after is None
    assert all(e.at.tzinfo is not None for e in entries)


async def test_audit_can_be_limited_and_filtered_by_job(store: Store) -> None:
    for job_id in ("a", "b", "c"):
        await store.save_job(a_job(job_id), actor="config")
    assert [e.job_id for e in await store.list_audit(limit=2)] == ["c", "b"]
    assert [e.job_id for e in await store.list_audit("a")] == ["a"]


# -- claims --------------------------------------------------------------------------------------
async def test_an_occurrence_is_claimed_once(store: Store) -> None:
    assert await store.claim_fire("digest", at(0), "node-a", now=at(0))
    assert not await store.claim_fire("digest", at(0), "node-b", now=at(0))
    assert await store.claim_fire("digest", at(1), "node-b", now=at(1))
    assert await store.claim_fire("other", at(0), "node-b", now=at(0))


async def test_the_same_instant_in_another_time_zone_is_the_same_occurrence(store: Store) -> None:
    assert await store.claim_fire("digest", at(0), "node-a", now=at(0))
    assert not await store.claim_fire(
        "digest", at(0).astimezone(BERLIN_WINTER), "node-b", now=at(0)
    )
    # Claimed in a batch, in either zone: the same occurrence as claimed alone.
    berlin = FireStart("digest", at(1).astimezone(BERLIN_WINTER), None, None)
    assert await store.start_fires([berlin], "node-a", now=at(1)) == [True]
    assert not await store.claim_fire("digest", at(1), "node-b", now=at(1))
    assert await store.start_fires([FireStart("digest", at(0), None, None)], "b", now=at(1)) == [
        False
    ]


async def test_concurrent_claims_of_one_occurrence_have_exactly_one_winner(store: Store) -> None:
    results = await asyncio.gather(
        *(store.claim_fire("digest", at(0), f"node-{i}", now=at(0)) for i in range(50))
    )
    assert results.count(True) == 1


# -- runs ----------------------------------------------------------------------------------------
async def test_fires_started_together_are_claimed_once_and_write_state_only_when_won(
    store: Store,
) -> None:
    for job_id in ("digest", "backup", "sync"):
        await store.save_job(a_job(job_id), actor="cli")
    assert await store.claim_fire("backup", at(0), "node-b", now=at(0))  # another node won it
    won = await store.start_fires(
        [
            FireStart("digest", at(0), next_run=at(1), last_fire=at(0)),
            FireStart("backup", at(0), next_run=at(1), last_fire=at(0)),
            FireStart("sync", at(0), next_run=at(5), last_fire=at(0)),
        ],
        "node-a",
        now=at(0),
    )
    assert won == [True, False, True]
    digest, backup, sync = [await store.get_job(j) for j in ("digest", "backup", "sync")]
    assert digest is not None and (digest.next_run, digest.last_fire) == (at(1), at(0))
    assert sync is not None and (sync.next_run, sync.last_fire) == (at(5), at(0))
    assert backup is not None and (backup.next_run, backup.last_fire) == (None, None)
    # The same fires again: all taken, whether started in a batch or claimed alone.
    again = await store.start_fires(
        [FireStart("digest", at(0), next_run=at(2), last_fire=at(0))], "node-b", now=at(0)
    )
    assert again == [False]
    assert not await store.claim_fire("sync", at(0), "node-b", now=at(0))
    digest = await store.get_job("digest")
    assert digest is not None and digest.next_run == at(1)


async def test_fires_started_together_write_their_running_records_only_when_won(
    store: Store,
) -> None:
    for job_id in ("digest", "backup"):
        await store.save_job(a_job(job_id), actor="cli")
    assert await store.claim_fire("backup", at(0), "node-b", now=at(0))
    lease = at(0) + timedelta(seconds=30)
    digest_run = a_run("r-digest", status=RunStatus.running, lease_expires_at=lease)
    backup_run = a_run("r-backup", job_id="backup", status=RunStatus.running)
    won = await store.start_fires(
        [
            FireStart("digest", at(0), next_run=at(1), last_fire=at(0), run=digest_run),
            FireStart("backup", at(0), next_run=at(1), last_fire=at(0), run=backup_run),
        ],
        "node-a",
        now=at(0),
    )
    assert won == [True, False]
    assert await store.get_run("r-digest") == digest_run
    assert await store.get_run("r-backup") is None
    # Recorded as `record_run` would: leased (renewable) and then finished by its id.
    assert await store.renew_lease("r-digest", "node-a", 0, until=at(1))
    finished = a_run("r-digest", status=RunStatus.succeeded)
    assert await store.record_run(finished)
    assert await store.list_runs(RunQuery(job_id="digest")) == [finished]


async def test_starting_no_fires_claims_nothing(store: Store) -> None:
    assert await store.start_fires([], "node-a", now=at(0)) == []


async def test_a_fire_of_an_unknown_job_is_claimed_without_state(store: Store) -> None:
    won = await store.start_fires(
        [FireStart("ghost", at(0), next_run=at(1), last_fire=at(0))], "node-a", now=at(0)
    )
    assert won == [True]
    assert await store.get_job("ghost") is None


async def test_concurrent_batches_of_one_occurrence_have_exactly_one_winner(store: Store) -> None:
    await store.save_job(a_job(), actor="cli")
    fire = FireStart("digest", at(0), next_run=at(1), last_fire=at(0))
    results = await asyncio.gather(
        *(store.start_fires([fire], f"node-{i}", now=at(0)) for i in range(20))
    )
    assert sorted(r[0] for r in results) == [False] * 19 + [True]


async def test_a_run_reads_back_with_every_field(store: Store) -> None:
    run = RunRecord(
        run_id="r1",
        job_id="digest",
        scheduled_for=at(0).astimezone(BERLIN_WINTER),
        status=RunStatus.failed,
        attempt=3,
        started_at=at(0) + timedelta(microseconds=123_457),
        finished_at=at(2),
        error="ValueError: bad",
        output_tail="line 1\nline 2 ✓",
        node_id="node-a",
        skip_reason=None,
        lease_expires_at=None,
        fence=2,
        queue_job_id="q-1",
    )
    assert await store.record_run(run)
    back = await store.get_run("r1")
    assert back == run
    assert back is not None and back.scheduled_for.utcoffset() is not None


async def test_recording_a_run_again_updates_it(store: Store) -> None:
    await store.record_run(a_run("r1", status=RunStatus.running, lease_expires_at=at(1)))
    done = a_run("r1", status=RunStatus.succeeded)
    assert await store.record_run(done)
    assert await store.get_run("r1") == done


async def test_a_record_with_a_lower_fence_is_refused(store: Store) -> None:
    await store.record_run(a_run("r1", status=RunStatus.running, fence=1, lease_expires_at=at(1)))
    assert not await store.record_run(a_run("r1", status=RunStatus.succeeded, fence=0))
    assert (await store.get_run("r1")).status == RunStatus.running  # type: ignore[union-attr]
    assert await store.record_run(a_run("r1", status=RunStatus.failed, fence=1))
    assert await store.record_run(a_run("r1", status=RunStatus.succeeded, fence=2))


async def test_runs_recorded_together_are_each_recorded_or_refused_by_their_own_fence(
    store: Store,
) -> None:
    for run_id in ("r1", "r2"):
        await store.record_run(
            a_run(run_id, status=RunStatus.running, fence=1, lease_expires_at=at(1))
        )
    batch = [
        a_run("r1", status=RunStatus.succeeded, fence=1),
        a_run("r2", status=RunStatus.succeeded, fence=0),  # taken over: refused
        a_run("r3", job_id="backup", status=RunStatus.failed, error="ValueError: bad"),
    ]
    assert await store.record_runs(batch) == [True, False, True]
    assert await store.get_run("r1") == batch[0]
    assert (await store.get_run("r2")).status == RunStatus.running  # type: ignore[union-attr]
    assert await store.get_run("r3") == batch[2]
    assert await store.list_runs(RunQuery(job_id="backup")) == [batch[2]]
    assert await store.record_runs([]) == []


async def test_runs_are_listed_newest_first_with_ties_broken_by_run_id(store: Store) -> None:
    for run_id, minute in (("b", 0), ("c", 5), ("a", 5), ("d", 2)):
        await store.record_run(a_run(run_id, minute=minute))
    runs = await store.list_runs(RunQuery(job_id="digest"))
    assert [r.run_id for r in runs] == ["c", "a", "d", "b"]


async def test_pages_cover_every_run_once_in_order(store: Store) -> None:
    for i in range(23):
        await store.record_run(a_run(f"r{i:02d}", minute=i))
    seen: list[str] = []
    for offset in range(0, 30, 5):
        page = await store.list_runs(RunQuery(job_id="digest", limit=5, offset=offset))
        seen += [r.run_id for r in page]
    assert seen == [f"r{i:02d}" for i in reversed(range(23))]
    assert await store.count_runs(RunQuery(job_id="digest", limit=5, offset=20)) == 23


async def test_runs_filter_by_job_status_and_time_range(store: Store) -> None:
    await store.record_run(a_run("ok-0", minute=0))
    await store.record_run(a_run("bad-10", minute=10, status=RunStatus.failed))
    await store.record_run(a_run("ok-20", minute=20))
    await store.record_run(a_run("other-10", minute=10, job_id="other"))
    failed = RunQuery(statuses=(RunStatus.failed,))
    assert [r.run_id for r in await store.list_runs(failed)] == ["bad-10"]
    window = RunQuery(job_id="digest", since=at(10), until=at(20))  # since inclusive, until not
    assert [r.run_id for r in await store.list_runs(window)] == ["bad-10"]
    both = RunQuery(statuses=(RunStatus.failed, RunStatus.succeeded), since=at(10))
    assert [r.run_id for r in await store.list_runs(both)] == ["ok-20", "other-10", "bad-10"]
    assert await store.count_runs(RunQuery()) == 4
    assert await store.count_runs(RunQuery(job_id="other")) == 1


async def test_run_statistics_per_job(store: Store) -> None:
    statuses = [
        (RunStatus.succeeded, 1.0),
        (RunStatus.succeeded, 3.0),
        (RunStatus.failed, 2.0),
        (RunStatus.succeeded, 4.0),
        (RunStatus.timed_out, 10.0),
        (RunStatus.skipped, None),
        (RunStatus.interrupted, 5.0),
    ]
    for i, (status, duration_s) in enumerate(statuses):
        await store.record_run(a_run(f"r{i}", minute=i, status=status, duration_s=duration_s))
    await store.record_run(a_run("live", minute=9, status=RunStatus.running, duration_s=None))
    stats = await store.run_stats("digest")
    assert (stats.total, stats.succeeded, stats.failed, stats.skipped) == (8, 3, 3, 1)
    assert stats.consecutive_failures == 2  # interrupted, (skip ignored), timed_out
    assert stats.last_success == at(3) + timedelta(seconds=4)
    assert stats.last_failure == at(6) + timedelta(seconds=5)
    assert stats.p50_duration_s == 3.0  # durations 1 2 3 4 5 10: nearest rank 3
    assert stats.p95_duration_s == 10.0


async def test_statistics_of_a_job_without_runs_are_empty(store: Store) -> None:
    stats = await store.run_stats("nope")
    assert stats.total == 0 and stats.consecutive_failures == 0
    assert stats.last_success is None and stats.p50_duration_s is None


async def test_pruning_by_age_never_deletes_running_or_scheduled_runs(store: Store) -> None:
    await store.record_run(a_run("old-done", minute=0))
    await store.record_run(a_run("old-running", minute=0, status=RunStatus.running))
    await store.record_run(a_run("old-scheduled", minute=0, status=RunStatus.scheduled))
    await store.record_run(a_run("new-done", minute=30))
    assert await store.prune_runs(older_than=at(10)) == 1
    left = {r.run_id for r in await store.list_runs(RunQuery())}
    assert left == {"old-running", "old-scheduled", "new-done"}


async def test_pruning_keeps_the_newest_final_runs_of_each_job(store: Store) -> None:
    for i in range(5):
        await store.record_run(a_run(f"a{i}", minute=i))
        await store.record_run(a_run(f"b{i}", minute=i, job_id="other"))
    await store.record_run(a_run("a-live", minute=-1, status=RunStatus.running))
    assert await store.prune_runs(keep_per_job=2) == 6
    left = sorted(r.run_id for r in await store.list_runs(RunQuery()))
    assert left == ["a-live", "a3", "a4", "b3", "b4"]


async def test_keeping_more_runs_per_job_than_any_database_counts_keeps_them_all(
    store: Store,
) -> None:
    # SQLite raised OverflowError ("Python int too large to convert to SQLite INTEGER").
    for i in range(3):
        await store.record_run(a_run(f"a{i}", minute=i))
    assert await store.prune_runs(keep_per_job=10**30) == 0
    assert len(await store.list_runs(RunQuery())) == 3


async def test_pruning_by_age_and_count_deletes_the_union(store: Store) -> None:
    for i in range(6):
        await store.record_run(a_run(f"r{i}", minute=i * 10))
    assert await store.prune_runs(older_than=at(15), keep_per_job=3) == 3
    assert [r.run_id for r in await store.list_runs(RunQuery())] == ["r5", "r4", "r3"]


# -- leases --------------------------------------------------------------------------------------
async def test_only_the_owner_with_the_current_fence_renews_a_lease(store: Store) -> None:
    await store.record_run(a_run("r1", status=RunStatus.running, fence=1, lease_expires_at=at(1)))
    assert await store.renew_lease("r1", "node-a", 1, until=at(2))
    assert (await store.get_run("r1")).lease_expires_at == at(2)  # type: ignore[union-attr]
    assert not await store.renew_lease("r1", "node-b", 1, until=at(3))
    assert not await store.renew_lease("r1", "node-a", 0, until=at(3))
    assert not await store.renew_lease("nope", "node-a", 1, until=at(3))
    await store.record_run(a_run("r1", status=RunStatus.succeeded, fence=1))
    assert not await store.renew_lease("r1", "node-a", 1, until=at(3))


async def test_expired_leases_are_interrupted_once_with_a_higher_fence(store: Store) -> None:
    await store.record_run(
        a_run("gone", status=RunStatus.running, lease_expires_at=at(1), node_id="node-a")
    )
    await store.record_run(a_run("alive", status=RunStatus.running, lease_expires_at=at(10)))
    await store.record_run(a_run("done", status=RunStatus.succeeded, lease_expires_at=at(1)))
    taken = await store.interrupt_expired(at(5))
    assert [r.run_id for r in taken] == ["gone"]
    run = taken[0]
    assert run.status == RunStatus.interrupted and run.fence == 1
    assert run.finished_at == at(5) and run.lease_expires_at is None
    # It says why it ended (it was `null`: a run that simply stopped, with no reason given).
    assert run.error == interrupted_error(run.node_id)
    assert "node-a" in (run.error or "")
    assert await store.get_run("gone") == run
    assert await store.interrupt_expired(at(5)) == []


async def test_concurrent_takeovers_hand_each_run_to_exactly_one_caller(store: Store) -> None:
    for i in range(20):
        await store.record_run(a_run(f"r{i}", status=RunStatus.running, lease_expires_at=at(1)))
    results = await asyncio.gather(*(store.interrupt_expired(at(2)) for _ in range(8)))
    taken = [r.run_id for batch in results for r in batch]
    assert sorted(taken) == sorted(f"r{i}" for i in range(20))


async def test_a_node_that_lost_its_lease_cannot_overwrite_the_takeover(store: Store) -> None:
    await store.record_run(a_run("r1", status=RunStatus.running, lease_expires_at=at(1)))
    [interrupted] = await store.interrupt_expired(at(2))
    late = a_run("r1", status=RunStatus.succeeded, fence=0)
    assert not await store.record_run(late)
    assert not await store.renew_lease("r1", "node-a", 0, until=at(9))
    retry = interrupted.evolve(status=RunStatus.running, attempt=2, node_id="node-b")
    assert await store.record_run(retry)
    assert (await store.get_run("r1")) == retry


# -- system state and nodes ----------------------------------------------------------------------
async def test_system_state_is_a_string_map(store: Store) -> None:
    await store.set_state("last_tick", "1")
    await store.set_state("last_tick", "2")
    assert await store.get_state("last_tick") == "2"


async def test_a_heartbeat_replaces_the_nodes_previous_one(store: Store) -> None:
    first = NodeHeartbeat(node_id="b", sequence=1, sent_at=at(0), details={"rss_mb": 12.5})
    second = NodeHeartbeat(
        node_id="b",
        sequence=2,
        sent_at=at(1),
        status="degraded",
        host="h",
        pid=42,
        version="0.1.0",
        platform="linux",
        started_at=at(-5),
        interval_s=15.0,
        details={"lag_ms": [1, 2]},
    )
    other = NodeHeartbeat(node_id="a", sequence=7, sent_at=at(0))
    for heartbeat in (first, second, other):
        await store.write_heartbeat(heartbeat)
    assert await store.list_heartbeats() == [other, second]
    assert await store.delete_node("b")
    assert await store.list_heartbeats() == [other]


async def test_records_written_together_are_fenced_one_by_one(store: Store) -> None:
    for i in range(30):
        fence = 2 if i % 3 == 0 else 0
        await store.record_run(
            a_run(f"r{i:02d}", minute=i, status=RunStatus.running, fence=fence, attempt=2)
        )
    results = await asyncio.gather(
        *(store.record_run(a_run(f"r{i:02d}", minute=i, fence=1, attempt=2)) for i in range(30)),
        store.record_run(a_run("brand-new", minute=99)),
    )
    assert results == [i % 3 != 0 for i in range(30)] + [True]
    for i in range(30):
        run = await store.get_run(f"r{i:02d}")
        assert run is not None
        assert run.status == (RunStatus.running if i % 3 == 0 else RunStatus.succeeded)
