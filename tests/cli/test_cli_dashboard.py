"""`agentcron dashboard` (the standalone, read-only one) as a real process: bad input is
refused before anything is written or printed, and its exposure warning fits what it can do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import migrated_data_dir


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DASHBOARD_", "SCHEDULER_"))}


def dashboard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentcron", "dashboard", "--port", "0", *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_host_is_refused_naming_the_flag_before_any_warning_or_token(
    tmp_path: Path,
) -> None:
    # QA: the "reachable from other machines" warning came first, then the failure.
    data = migrated_data_dir(tmp_path)
    result = dashboard("--host", "not a host", "--data-dir", str(data), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "agentcron: --host 'not a host' is invalid: may not contain spaces or control characters\n"
    )
    assert result.stdout == ""
    assert not (data / "dashboard.token").exists()


def test_a_corrupt_database_is_refused_before_a_token_is_written(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "scheduler.db").write_bytes(b"not a database, " * 512)
    result = dashboard("--data-dir", str(data), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("agentcron: ") and result.stderr.count("\n") == 1
    assert not (data / "dashboard.token").exists()


@pytest.mark.slow
def test_beyond_loopback_it_warns_that_the_token_shows_everything_not_that_it_changes_jobs(
    tmp_path: Path,
) -> None:
    data = migrated_data_dir(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "agentcron", "dashboard", "--host", "0.0.0.0", "--port", "0",
         "--data-dir", str(data)],
        cwd=tmp_path, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("agentcron dashboard on "):
                break
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "reachable from other machines" in err
    assert "can see every job, its runs and their output" in err
    assert "change jobs" not in err
