"""`agentcron.filelock`: one holder at a time, released by the kernel, and usable on a lock
file another user made (as the restore lock in the shared temporary directory is)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agentcron.filelock import lock_or_none


def test_a_lock_has_one_holder_until_it_is_closed(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = lock_or_none(path)
    assert first is not None
    assert lock_or_none(path) is None
    os.close(first)
    second = lock_or_none(path)
    assert second is not None
    os.close(second)


def test_a_killed_holder_leaves_the_lock_free(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom agentcron.filelock import lock_or_none\n"
            "print(lock_or_none(sys.argv[1]) is not None, flush=True)\nsys.stdin.readline()\n",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        assert lock_or_none(path) is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.communicate(timeout=60)
    fd = lock_or_none(path)
    assert fd is not None
    os.close(fd)


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0, reason="acts as another user (needs root)"
)
def test_a_lock_file_another_user_made_can_still_be_locked() -> None:
    # The restore lock lives in the shared /tmp: made by one user (mode 0644), another
    # user's restore could not open it for writing and was refused until a reboot.
    shared = Path(tempfile.mkdtemp())  # (in the temporary directory, as the restore lock)
    try:
        os.chmod(shared, 0o755)
        path = shared / "shared.lock"
        made = lock_or_none(path, mode=0o644)
        assert made is not None
        os.close(made)
        assert_another_user_can_lock(path)
    finally:
        shutil.rmtree(shared)


def assert_another_user_can_lock(path: Path) -> None:
    pid = os.fork()
    if pid == 0:  # the child, as `nobody`
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            fd = lock_or_none(path)
            code = 0 if fd is not None else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
