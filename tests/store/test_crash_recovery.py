"""Crash recovery through the engine: a real scheduler process on a real SQLite file,
SIGKILLed at random points 20 times in a row, then restarted and stopped cleanly."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agentcron.models import occurrence_key
from agentcron.store.sqlite import from_us

DRIVER = Path(__file__).with_name("crash_driver.py")
SRC = Path(__file__).resolve().parents[2] / "src"

pytestmark = pytest.mark.slow


def start_driver(db: Path, log: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), str(db), str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{DRIVER.parent}"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"driver did not start: {line!r} {err}")
    return proc


def run_log(db: Path) -> list[tuple[str, int, str, int]]:
    """(occurrence scheduled_for_us, attempt, status, fence) of every recorded run."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT scheduled_for_us, attempt, status, fence FROM runs WHERE job_id = 'tick'"
        ).fetchall()
    finally:
        conn.close()


def test_twenty_sigkills_lose_no_acknowledged_run_and_run_nothing_twice(tmp_path: Path) -> None:
    db, log = tmp_path / "scheduler.db", tmp_path / "handler.log"
    rng = random.Random(20)
    for _ in range(20):
        proc = start_driver(db, log)
        time.sleep(rng.uniform(0.2, 2.0))  # a random SIGKILL point (noqa: sleep-ok)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    proc = start_driver(db, log)
    time.sleep(4.0)  # leases (1 s) of the killed runs expire and are recovered (noqa: sleep-ok)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err

    runs = run_log(db)
    assert runs, "nothing ran"
    statuses = Counter(status for _, _, status, _ in runs)
    assert statuses["running"] == 0 and statuses["scheduled"] == 0, statuses
    succeeded = Counter(at for at, _, status, _ in runs if status == "succeeded")
    assert all(count == 1 for count in succeeded.values()), "an occurrence succeeded twice"
    recorded = {at for at, _, _, _ in runs}
    started = {line.split()[1] for line in log.read_text().splitlines()}
    keys = {occurrence_key("tick", from_us(at)) for at in recorded}  # type: ignore[arg-type]
    assert started <= keys, "a handler ran for an occurrence missing from the run log"
    assert statuses["interrupted"] >= 1, statuses
    # Interrupted runs are retried by the engine's retry policy (attempt 2, 3 of the same
    # occurrence). Not asserted for every one: a process killed between taking a run over
    # and starting its retry loses that retry (the engine does not persist retry intent).
    assert any(attempt > 1 for _, attempt, _, _ in runs), "no interrupted run was retried"
    assert len(recorded) >= 10
