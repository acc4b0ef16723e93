"""Run one child process to completion, capturing bounded output, owning its whole tree.

Shared by `Command` and process-isolated callables. The output is collected by a protocol
that keeps only tails (memory stays bounded whatever the child prints). Completion is the
*leader's* exit, not the end of its output: a background grandchild holding the pipe open
must not hang the run, so once the leader exits, what is left of its group is terminated
(like systemd's `KillMode=control-group`) and the pipes get a short, bounded drain.

If the awaiting task is cancelled (engine timeout or cancel), the whole tree is terminated,
then killed after `kill_grace_s`, and the cancellation is re-raised. A second cancel during
that clean-up does not interrupt it.

With a `ChildLabel` and records installed (`agentcron.handlers.child_records`, what
`agentcron run` does), the child's group is recorded from right after the spawn until it is
gone, so that if this process dies meanwhile, its next start kills what it left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from agentcron.handlers import child_records
from agentcron.handlers.child_records import ChildLabel
from agentcron.handlers.output import OutputTail
from agentcron.handlers.process_tree import (
    group_spawn_options,
    leftover_group_members,
    terminate_tree,
)

__all__ = ["ChildResult", "run_child"]

#: How long to keep reading pipes after the tree is gone (an escaped daemon may hold them).
_PIPE_DRAIN_S = 1.0


@dataclass(frozen=True, slots=True)
class ChildResult:
    """How the child ended: `returncode` (negative: killed by that signal, POSIX) and tails."""

    returncode: int
    output: OutputTail
    stdout: OutputTail | None


class _Collector(asyncio.SubprocessProtocol):
    def __init__(self, sinks: Mapping[int, OutputTail]) -> None:
        loop = asyncio.get_running_loop()
        self.sinks = sinks
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        sink = self.sinks.get(fd)
        if sink is not None:
            sink.write(data.encode() if isinstance(data, str) else data)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def run_child(
    argv: Sequence[str] | str,
    *,
    shell: bool = False,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    output_limit_bytes: int,
    separate_stdout_limit_bytes: int | None = None,
    kill_grace_s: float,
    label: ChildLabel | None = None,
) -> ChildResult:
    """Run `argv` (or, with `shell=True`, the string through the system shell).

    `label` names the run the child serves, for the record of its group (module docstring).
    Output: stdout and stderr go to one tail (`output`), unless `separate_stdout_limit_bytes`
    is given, in which case stdout gets its own tail (`stdout`) and `output` holds stderr.
    Raises OSError if the program cannot be started (missing, not executable, bad cwd).
    """
    output = OutputTail(output_limit_bytes)
    stdout = (
        None if separate_stdout_limit_bytes is None else OutputTail(separate_stdout_limit_bytes)
    )
    sinks = {1: stdout if stdout is not None else output, 2: output}
    loop = asyncio.get_running_loop()
    options: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.PIPE,
        "stderr": subprocess.PIPE if stdout is not None else subprocess.STDOUT,
        "cwd": cwd,
        "env": dict(env) if env is not None else None,
        **group_spawn_options(),
    }
    if shell:
        assert isinstance(argv, str)
        spawning = loop.subprocess_shell(lambda: _Collector(sinks), argv, **options)
    else:
        spawning = loop.subprocess_exec(lambda: _Collector(sinks), *argv, **options)
    (transport, protocol), cancelled = await _spawn_to_the_end(spawning)
    pid = transport.get_pid()
    records = child_records.installed()
    record = None
    if records is not None and label is not None:
        record = records.add(pid, label, kill_grace_s=kill_grace_s)
    try:
        try:
            leader = psutil.Process(pid)
        except psutil.Error:
            leader = None  # it already exited and was reaped: nothing to supervise
        try:
            await _supervise(protocol, leader, kill_grace_s, cancelled=cancelled)
        finally:
            transport.close()
    finally:
        if records is not None and record is not None:
            records.release(record, pid)
    returncode = transport.get_returncode()
    assert returncode is not None
    return ChildResult(returncode=returncode, output=output, stdout=stdout)


async def _spawn_to_the_end(
    spawning: Coroutine[Any, Any, tuple[asyncio.SubprocessTransport, _Collector]],
) -> tuple[tuple[asyncio.SubprocessTransport, _Collector], bool]:
    """Finish starting the child even if cancelled meanwhile; say whether we were.

    The child may fork before its pipes are connected; cancelling the start itself would
    make asyncio kill the leader alone and orphan those children.
    """
    task = asyncio.ensure_future(spawning)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
        except OSError:
            if cancelled:
                raise asyncio.CancelledError from None
            raise


async def _supervise(
    protocol: _Collector, leader: psutil.Process | None, kill_grace_s: float, *, cancelled: bool
) -> None:
    try:
        if cancelled:
            raise asyncio.CancelledError
        await asyncio.shield(protocol.exited)
    except asyncio.CancelledError:
        if leader is not None:
            await _uninterrupted(terminate_tree(leader, grace_s=kill_grace_s))
        raise
    if leader is not None and leftover_group_members(leader.pid):
        await _uninterrupted(terminate_tree(leader, grace_s=kill_grace_s))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_PIPE_DRAIN_S):
            await asyncio.shield(protocol.closed)


async def _uninterrupted(cleanup: Coroutine[Any, Any, None]) -> None:
    """Await `cleanup` to the end even if the caller is cancelled meanwhile, then re-raise."""
    task = asyncio.ensure_future(cleanup)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
