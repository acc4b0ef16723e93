"""Run records and run ids."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from agentcron.models import RunRecord, RunStatus, new_run_id, new_run_ids

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_run_ids_are_unique_32_hex_digits_and_ordered_by_time() -> None:
    ids = [new_run_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    # The first 12 digits are the millisecond timestamp: never decreasing.
    stamps = [int(i[:12], 16) for i in ids]
    assert stamps == sorted(stamps)


def test_run_ids_made_together_share_a_timestamp_and_never_repeat_the_single_ones() -> None:
    before = new_run_id()
    batch = new_run_ids(1_000)
    after = new_run_id()
    assert len(batch) == 1_000 and len({before, after, *batch}) == 1_002
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in batch)
    # One timestamp for the batch, between those of the ids made around it; the same
    # per-process digits; and the counter goes on from one id to the next.
    assert len({i[:12] for i in batch}) == 1
    assert before[:12] <= batch[0][:12] <= after[:12]
    assert {i[12:24] for i in batch} == {before[12:24]}
    counters = [int(i[24:], 16) for i in [before, *batch, after]]
    assert all((b - a) % 2**32 == 1 for a, b in zip(counters, counters[1:], strict=False))
    assert new_run_ids(0) == []


def test_a_forked_child_draws_its_own_run_id_randomness() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send one id and leave without running pytest's teardown
        os.write(write, new_run_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent_id = new_run_id()
    # Digits 12-24 are drawn per process: parent and child never share them.
    assert len(child_id) == 32
    assert child_id[12:24] != parent_id[12:24]


def test_a_run_record_is_immutable_and_evolves_into_a_copy() -> None:
    run = RunRecord(run_id="r1", job_id="digest", scheduled_for=T0, status=RunStatus.running)
    done = run.evolve(
        status=RunStatus.succeeded, started_at=T0, finished_at=T0 + timedelta(seconds=2)
    )
    assert run.status == RunStatus.running
    assert done.status == RunStatus.succeeded and done.duration_s == 2.0
    assert done.to_dict()["occurrence_key"] == "digest@2026-03-01T09:00:00+00:00"
    with pytest.raises(AttributeError):
        run.status = RunStatus.failed  # type: ignore[misc]
