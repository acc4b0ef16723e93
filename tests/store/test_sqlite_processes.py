"""Real processes on one SQLite file: exclusive claims, SIGKILL, lease takeover, disk full."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron.models import RunQuery, RunRecord, RunStatus
from agentcron.store.sqlite import SqliteStore

CHILD = Path(__file__).with_name("store_children.py")
SRC = Path(__file__).resolve().parents[2] / "src"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.slow


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )


def read_lines_until(proc: subprocess.Popen[str], count: int) -> list[str]:
    """Read `count` lines of the child's output (blocks on the pipe, bounded by the child)."""
    assert proc.stdout is not None
    lines = []
    while len(lines) < count:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
    return lines


async def fresh_db(tmp_path: Path) -> Path:
    path = tmp_path / "scheduler.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    return path


async def test_two_processes_claim_each_of_30_occurrences_exactly_once(tmp_path: Path) -> None:
    db = await fresh_db(tmp_path)
    go = tmp_path / "go"
    procs = [spawn("claim", str(db), node, str(go), "30") for node in ("node-a", "node-b")]
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    wins = Counter(line for out, _ in outputs for line in out.splitlines())
    assert sorted(wins) == sorted(f"won {i}" for i in range(30))
    assert set(wins.values()) == {1}


async def test_two_processes_taking_over_expired_runs_each_get_distinct_runs(
    tmp_path: Path,
) -> None:
    db = await fresh_db(tmp_path)
    store = SqliteStore(db)
    for i in range(40):
        await store.record_run(
            RunRecord(
                run_id=f"r{i:02d}",
                job_id="tick",
                scheduled_for=T0 + timedelta(seconds=i),
                status=RunStatus.running,
                lease_expires_at=T0,
            )
        )
    await store.close()
    go = tmp_path / "go"
    procs = [spawn("takeover", str(db), str(go)) for _ in range(2)]
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    taken = Counter(line for out, _ in outputs for line in out.splitlines())
    assert sorted(taken) == sorted(f"took r{i:02d}" for i in range(40))
    assert set(taken.values()) == {1}


async def test_every_acknowledged_run_survives_sigkill_at_random_points(tmp_path: Path) -> None:
    db = await fresh_db(tmp_path)
    rng = random.Random(4)
    acknowledged: set[str] = set()
    for _ in range(5):
        proc = spawn("record", str(db))
        lines = read_lines_until(proc, rng.randint(5, 400))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        acknowledged.update(line.split()[1] for line in lines + rest.splitlines())
    store = SqliteStore(db)
    await store.open()
    stored = {r.run_id for r in await store.list_runs(RunQuery(limit=100_000))}
    await store.close()
    assert acknowledged <= stored


async def test_a_run_of_a_killed_process_is_taken_over_after_its_lease(tmp_path: Path) -> None:
    db = await fresh_db(tmp_path)
    proc = spawn("lease", str(db))
    assert read_lines_until(proc, 1) == ["leased"]
    proc.kill()
    proc.communicate(timeout=30)
    store = SqliteStore(db)
    await store.open()
    assert await store.interrupt_expired(T0 + timedelta(seconds=29)) == []
    [taken] = await store.interrupt_expired(T0 + timedelta(seconds=30))
    assert taken.run_id == "leased" and taken.status == RunStatus.interrupted
    assert taken.fence == 1 and taken.node_id == "node-dies"
    await store.close()


async def test_a_full_disk_is_reported_and_the_last_good_state_kept(tmp_path: Path) -> None:
    db = await fresh_db(tmp_path)
    proc = spawn("fill", str(db), str(1024 * 1024))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[-1].startswith("error "), lines[-3:]
    assert str(db) in lines[-1] and ("disk is full" in lines[-1] or "I/O error" in lines[-1])
    acknowledged = {line.split()[1] for line in lines[:-1]}
    assert len(acknowledged) >= 5
    store = SqliteStore(db)
    await store.open()
    stored = {r.run_id for r in await store.list_runs(RunQuery(limit=100_000))}
    await store.close()
    assert acknowledged <= stored
    assert await asyncio.to_thread(integrity, db) == "ok"


def integrity(db: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def test_two_processes_creating_one_new_database_at_once_both_open_it(tmp_path: Path) -> None:
    # Two `agentcron worker`s started together on a new data directory: a third of the time
    # one failed with "database is locked" (SQLite answers busy at once, without waiting,
    # while the other switches the new file to WAL), or refused the file as "not an
    # agentcron database" (its identity read between the other's commit and its own reads).
    for attempt in range(12):
        db, go = tmp_path / f"new-{attempt}.db", tmp_path / f"go-{attempt}"
        procs = [spawn("open", str(db), str(go)) for _ in range(2)]
        go.touch()
        outputs = [proc.communicate(timeout=60) for proc in procs]
        assert [out.strip() for out, _ in outputs] == ["opened", "opened"], (attempt, outputs)
