"""SqliteStore's batched hot path: `start_fires` and `record_runs` write many rows per
statement, yet answer exactly as one statement per row would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agentcron.models import FireStart, RunRecord, RunStatus
from agentcron.store.sqlite import SqliteStore
from agentcron.store.sqlite_codec import inline_nulls, to_us

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "s.db") as store:
        yield store


def a_run(run_id: str, **fields: object) -> RunRecord:
    defaults: dict[str, object] = {
        "job_id": "digest",
        "scheduled_for": T0,
        "status": RunStatus.running,
        "started_at": T0,
        "node_id": "node-a",
        "lease_expires_at": T0 + timedelta(seconds=30),
    }
    return RunRecord(run_id=run_id, **(defaults | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "dt",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
    ],
)
def test_times_are_exact_microseconds_since_the_epoch(dt: datetime) -> None:
    assert to_us(dt) == (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def test_only_columns_null_in_every_row_become_null_literals() -> None:
    sql = "INSERT INTO t (a, b, c) VALUES (?, ?, ?)"
    assert inline_nulls(sql, [(1, None, None), (2, None, "x")]) == (
        "INSERT INTO t (a, b, c) VALUES (?, NULL, ?)",
        [(1, None), (2, "x")],
    )
    assert inline_nulls(sql, [(1, 2, 3)]) == (sql, [(1, 2, 3)])
    assert inline_nulls(sql, [(None, None, None)]) == (sql, [(None, None, None)])
    with pytest.raises(ValueError, match="placeholders"):
        inline_nulls("UPDATE t SET a = ?", [(1, None)])


async def test_runs_started_together_read_back_whatever_their_nulls(store: SqliteStore) -> None:
    runs = [
        a_run("r1"),
        a_run("r2", job_id="backup", error="bad", lease_expires_at=None),
        a_run("r3", job_id="sync", output_tail="ok", queue_job_id="q-1"),
    ]
    fires = [FireStart(r.job_id, T0, T0 + timedelta(seconds=1), T0, r) for r in runs]
    assert await store.start_fires(fires, "node-a", now=T0) == [True, True, True]
    assert [await store.get_run(r.run_id) for r in runs] == runs
    ended = [r.evolve(status=RunStatus.succeeded, lease_expires_at=None) for r in runs]
    assert await store.record_runs(ended) == [True, True, True]
    assert [await store.get_run(r.run_id) for r in runs] == ended


async def test_a_fire_given_twice_in_one_call_is_won_once(store: SqliteStore) -> None:
    fire = FireStart("digest", T0, T0 + timedelta(seconds=1), T0, a_run("r1"))
    twice = FireStart("digest", T0, T0 + timedelta(seconds=2), T0, a_run("r2"))
    other = FireStart("backup", T0, T0 + timedelta(seconds=1), T0)
    assert await store.start_fires([fire, twice, other], "node-a", now=T0) == [True, False, True]
    assert await store.get_run("r2") is None
    lost = FireStart("backup", T0, None, T0)
    assert await store.start_fires([twice, lost], "node-b", now=T0) == [False, False]


async def test_runs_recorded_together_are_recorded_in_order(store: SqliteStore) -> None:
    await store.record_runs([a_run("r1"), a_run("r2", fence=1)])
    ended = {"finished_at": T0 + timedelta(seconds=1), "lease_expires_at": None}
    batch = [
        a_run("r1", status=RunStatus.succeeded, output_tail="done", **ended),
        a_run("r2", status=RunStatus.failed, fence=1, error="bad", **ended),
        a_run("r2", status=RunStatus.succeeded, fence=2, **ended),
        a_run("r2", status=RunStatus.failed, fence=1, **ended),  # behind fence 2: refused
        a_run("r3", job_id="backup", status=RunStatus.succeeded, **ended),
    ]
    assert await store.record_runs(batch) == [True, True, True, False, True]
    assert await store.get_run("r1") == batch[0]
    assert await store.get_run("r2") == batch[2]
    assert await store.get_run("r3") == batch[4]
