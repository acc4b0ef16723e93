"""Read-only checks against the real OS tools, each run only on its own platform.

Nothing is installed: these validate generated files with the platform's own validator and
query names that do not exist.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from service_testlib import SpecFactory

from agentcron.service import SubprocessRunner
from agentcron.service.launchd import LaunchdManager, render_plist
from agentcron.service.systemd import SystemdManager
from agentcron.service.windows_task import WindowsTaskManager


def _absent_name() -> str:
    return f"agentcron-test-{uuid.uuid4().hex[:12]}"


@pytest.mark.windows
@pytest.mark.skipif(sys.platform != "win32", reason="Task Scheduler is Windows-only")
def test_windows_reports_a_task_that_does_not_exist_as_absent(make_spec: SpecFactory) -> None:
    manager = WindowsTaskManager(make_spec(name=_absent_name()), SubprocessRunner(), user="x")
    assert manager.exists() is False
    assert manager.status().state == "not installed"


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="launchd is macOS-only")
def test_the_plist_passes_plutil_lint(make_spec: SpecFactory, tmp_path: Path) -> None:
    plist = tmp_path / "agentcron.plist"
    plist.write_text(render_plist(make_spec(scope="user")))
    done = subprocess.run(
        ["plutil", "-lint", str(plist)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="launchd is macOS-only")
def test_launchd_reports_a_job_that_does_not_exist_as_absent(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    manager = LaunchdManager(
        make_spec(scope="user", name=_absent_name()), SubprocessRunner(), home=tmp_path, uid=501
    )
    assert manager.exists() is False


@pytest.mark.skipif(sys.platform != "linux", reason="systemctl is Linux-only")
def test_a_unit_that_does_not_exist_is_absent_even_without_a_running_systemd(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    manager = SystemdManager(
        make_spec(name=_absent_name()), SubprocessRunner(), home=tmp_path, unit_dir=tmp_path
    )
    assert manager.exists() is False
    assert manager.status().installed is False
