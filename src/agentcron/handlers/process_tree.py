"""Start a child in its own process group, and terminate the whole tree it grew.

The only platform-specific module of the handlers. A run owns every process it started, so
stopping a run (timeout, cancel, or just the leader exiting) must stop them all:

* POSIX: the child starts a new session (`start_new_session=True`), so it leads a process
  group that its children inherit. Termination sends SIGTERM to the group and to every
  descendant psutil can see (a snapshot taken *before* signalling, which also catches
  grandchildren that left the group), waits up to the grace period, then sends SIGKILL.
* Windows: the child starts with `CREATE_NEW_PROCESS_GROUP`; termination sends
  CTRL_BREAK_EVENT, waits the grace period, then runs `taskkill /T /F /PID` (an argv list,
  no shell) and kills the psutil snapshot.

Zombies count as gone: they hold no resources but a table slot, and are reaped by whoever
adopted them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import psutil

__all__ = [
    "alive",
    "group_spawn_options",
    "leftover_group_members",
    "terminate_processes",
    "terminate_tree",
    "tree_of",
]

logger = logging.getLogger(__name__)

#: How often the tree is polled while waiting for it to exit.
_POLL_S = 0.02
#: How long to wait for SIGKILLed / force-killed processes to disappear.
_KILL_WAIT_S = 5.0
#: Upper bound for the `taskkill` helper itself.
_TASKKILL_TIMEOUT_S = 10.0


def group_spawn_options() -> dict[str, Any]:
    """Keyword arguments for `subprocess_exec` that make the child lead its own group."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def alive(proc: psutil.Process) -> bool:
    """True if `proc` (the very process, not a recycled pid) runs and is not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def leftover_group_members(leader_pid: int) -> list[psutil.Process]:
    """Live processes still in the group led by `leader_pid` (POSIX; empty on Windows)."""
    if sys.platform == "win32":
        return []
    try:
        os.killpg(leader_pid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass  # someone is in the group; the scan below tells who
    members: list[psutil.Process] = []
    for proc in psutil.process_iter():
        with contextlib.suppress(OSError, psutil.Error):
            if os.getpgid(proc.pid) == leader_pid and alive(proc):
                members.append(proc)
    return members


async def terminate_tree(leader: psutil.Process, *, grace_s: float) -> None:
    """Terminate `leader` (started with `group_spawn_options`) and all its descendants.

    Politely first, then by force after `grace_s` seconds. Returns once every process found
    is gone, or after a bounded wait (a process that survives SIGKILL is logged, not awaited).
    Never raises for processes that are already gone.
    """
    targets = tree_of(leader)
    if sys.platform == "win32":
        await _terminate_windows(leader, targets, grace_s)
    else:
        await _terminate_posix(leader.pid, targets, grace_s)


async def terminate_processes(targets: list[psutil.Process], *, grace_s: float) -> None:
    """Terminate `targets` and their descendants, each by itself (POSIX): SIGTERM, then
    SIGKILL after `grace_s` seconds.

    For the members of a group whose leader is gone: no group is signalled, since only the
    processes checked to be its own may be. psutil refuses to signal a process whose pid was
    reused meanwhile."""
    found = {proc.pid: proc for proc in targets}
    for proc in targets:
        with contextlib.suppress(psutil.Error):
            found.update((child.pid, child) for child in proc.children(recursive=True))
    tree = list(found.values())
    _signal_each(tree, signal.SIGTERM)
    if await _wait_gone(tree, grace_s):
        return
    _signal_each(tree, signal.SIGKILL)
    if not await _wait_gone(tree, _KILL_WAIT_S):
        logger.warning("processes %s survived SIGKILL", ", ".join(str(p.pid) for p in tree))


def tree_of(leader: psutil.Process) -> list[psutil.Process]:
    """`leader`, its descendants, and (POSIX) what is left in the group it leads: now."""
    found = [leader]
    with contextlib.suppress(psutil.Error):
        found.extend(leader.children(recursive=True))
    if sys.platform != "win32":
        found.extend(leftover_group_members(leader.pid))
    unique = {proc.pid: proc for proc in found}
    return list(unique.values())


async def _terminate_posix(pgid: int, targets: list[psutil.Process], grace_s: float) -> None:
    _signal_group(pgid, signal.SIGTERM)
    _signal_each(targets, signal.SIGTERM)
    if await _wait_gone(targets, grace_s, pgid=pgid):
        return
    _signal_group(pgid, signal.SIGKILL)
    _signal_each([*targets, *leftover_group_members(pgid)], signal.SIGKILL)
    if not await _wait_gone(targets, _KILL_WAIT_S, pgid=pgid):
        logger.warning("processes of group %d survived SIGKILL", pgid)


async def _terminate_windows(
    leader: psutil.Process, targets: list[psutil.Process], grace_s: float
) -> None:
    asked = False
    if sys.platform == "win32":
        try:
            os.kill(leader.pid, signal.CTRL_BREAK_EVENT)
            asked = True
        except OSError:
            pass  # no console shared with the child (e.g. running as a service): force it
    if asked and await _wait_gone(targets, grace_s):
        return
    if alive(leader):
        await _taskkill_tree(leader.pid)
    for proc in targets:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if not await _wait_gone(targets, _KILL_WAIT_S):
        logger.warning("processes of the tree of pid %d survived a forced kill", leader.pid)


async def _taskkill_tree(pid: int) -> None:
    try:
        helper = await asyncio.create_subprocess_exec(
            "taskkill", "/T", "/F", "/PID", str(pid),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    except OSError as exc:
        logger.warning("taskkill could not start: %s", exc)
        return
    try:
        async with asyncio.timeout(_TASKKILL_TIMEOUT_S):
            await helper.wait()
    except TimeoutError:
        helper.kill()


def _signal_group(pgid: int, signum: int) -> None:
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)


def _signal_each(procs: Iterable[psutil.Process], signum: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signum)


async def _wait_gone(
    targets: list[psutil.Process], timeout_s: float, *, pgid: int | None = None
) -> bool:
    """Poll until every target (and, on POSIX, the group) is gone; False on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, timeout_s)
    while True:
        if not any(alive(proc) for proc in targets) and not (
            pgid is not None and leftover_group_members(pgid)
        ):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)
