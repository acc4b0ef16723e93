"""`agentcron run` itself, SIGKILLed at random points and restarted: the run log stays exact."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron.models import RunQuery, RunStatus
from agentcron.store.sqlite import SqliteStore

SRC = Path(__file__).resolve().parents[2] / "src"
HANDLER = """import os, sys, time
def say(line):
    with open(sys.argv[1], "a") as f:
        f.write(line + "\\n")
key = os.environ["AGENTCRON_OCCURRENCE_KEY"]
say(f"start {key} {os.environ['AGENTCRON_ATTEMPT']}")
time.sleep(0.3)  # the hung or busy work of a child process (noqa: sleep-ok)
say(f"done {key}")
"""

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path) -> Path:
    handler = tmp_path / "handler.py"
    handler.write_text(HANDLER)
    config = tmp_path / "agentcron.toml"
    log = tmp_path / "handler.log"
    config.write_text(
        "[[jobs]]\n"
        'id = "tick"\n'
        'trigger = "* * * * * *"\n'
        f"command = [{str(sys.executable)!r}, {str(handler)!r}, {str(log)!r}]\n"
        'retry = { max_attempts = 3, strategy = "fixed", base_delay = "0s" }\n'
    )
    return config


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def starts(log: Path) -> int:
    return sum(1 for line in lines(log) if line.startswith("start "))


def start(config: Path, data: Path, log: Path) -> subprocess.Popen[bytes]:
    # Ready once a handler *starts*: a handler orphaned by the previous SIGKILL may still
    # write its "done" line, and returning on that (as this did) could SIGTERM the new
    # process before it handles signals (CI saw returncode -15).
    before = starts(log)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentcron",
            "run",
            "--config",
            str(config),
            "--data-dir",
            str(data),
            "--no-dashboard",
            "--no-log-file",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        cwd=config.parent,
    )
    deadline = time.monotonic() + 60
    while starts(log) <= before:  # running: the job fired at least once
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "agentcron run fired nothing"
        time.sleep(0.05)  # waits for a real process, bounded (noqa: sleep-ok)
    return proc


def test_agentcron_run_killed_at_random_points_keeps_an_exact_run_log(tmp_path: Path) -> None:
    config, data, log = write_config(tmp_path), tmp_path / "data", tmp_path / "handler.log"
    rng = random.Random(5)
    for _ in range(6):
        proc = start(config, data, log)
        time.sleep(rng.uniform(0.0, 1.5))  # a random point to SIGKILL (noqa: sleep-ok)
        proc.kill()
        proc.communicate(timeout=30)
    proc = start(config, data, log)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err

    async def check() -> None:
        store = SqliteStore(data / "scheduler.db")
        await store.open()
        # The killed processes' leases (60 s) have not expired yet: expire them as a
        # surviving node would after a minute. Each is found exactly once.
        later = datetime.now(UTC) + timedelta(minutes=5)
        taken = await store.interrupt_expired(later)
        runs = await store.list_runs(RunQuery(job_id="tick", limit=100_000))
        await store.close()
        statuses = Counter(r.status for r in runs)
        assert statuses[RunStatus.running] == 0 and statuses[RunStatus.scheduled] == 0
        assert all(r.status == RunStatus.interrupted for r in taken)
        succeeded = Counter(r.occurrence_key for r in runs if r.status == RunStatus.succeeded)
        assert set(succeeded.values()) <= {1}, "an occurrence succeeded twice"
        started = {line.split()[1] for line in lines(log) if line.startswith("start ")}
        assert started <= {r.occurrence_key for r in runs}, "a fire ran without a run record"

    asyncio.run(check())
