"""Instance slots (`heartbeat.instance`): processes of one role on one data dir get distinct
numbers, held until they exit (SIGKILL included), and the first keeps the plain node id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from agentcron.heartbeat.instance import claim_instance, instance_node_id

_HOLD = """
import sys
from agentcron.heartbeat.instance import claim_instance
print(claim_instance(sys.argv[1], sys.argv[2]), flush=True)
sys.stdin.read()  # hold the slot until the parent closes stdin (or kills us)
"""


def _holder(data_dir: Path, role: str) -> tuple[subprocess.Popen[str], int]:
    """A real process holding a slot of `role` on `data_dir`, and its slot."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(data_dir), role],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"holder printed {line!r} (exit {proc.poll()})"
    return proc, int(line)


def _end(proc: subprocess.Popen[str]) -> None:
    proc.communicate(timeout=30)  # closes its stdin (it exits) and its stdout


def test_one_process_asking_again_keeps_its_slot(tmp_path: Path) -> None:
    assert claim_instance(tmp_path, "run") == 1
    assert claim_instance(tmp_path, "run") == 1
    assert instance_node_id("host-1", tmp_path, "run") == "host-1"


def test_processes_running_at_once_get_the_next_free_slots_and_their_node_ids_differ(
    tmp_path: Path,
) -> None:
    first, first_slot = _holder(tmp_path, "worker:emails")
    second, second_slot = _holder(tmp_path, "worker:emails")
    other_role, other_slot = _holder(tmp_path, "worker:reports")
    try:
        assert (first_slot, second_slot, other_slot) == (1, 2, 1)
        # This test process is the third of its role here: `#3`.
        assert instance_node_id("h:worker:emails", tmp_path, "worker:emails") == (
            "h:worker:emails#3"
        )
    finally:
        for proc in (first, second, other_role):
            _end(proc)


def test_a_killed_process_frees_its_slot_for_the_next_one(tmp_path: Path) -> None:
    first, _ = _holder(tmp_path, "run")
    second, _ = _holder(tmp_path, "run")
    try:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)  # dead: the kernel has dropped its lock
        third, third_slot = _holder(tmp_path, "run")
        _end(third)
        assert third_slot == 1
    finally:
        _end(first)
        _end(second)


def test_roles_with_path_characters_stay_inside_the_lock_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    holder, slot = _holder(data_dir, "worker:../../escape\n")
    _end(holder)
    assert slot == 1
    assert [p.parent for p in tmp_path.rglob("*.lock")] == [data_dir / "instances"]
