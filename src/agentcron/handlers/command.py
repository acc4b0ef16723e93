"""`Command`: run a program as an argv list, capture the tail of its output, own its tree.

A string command is split (`shlex` on POSIX, the Windows command-line rules on Windows) and
never goes through a shell unless `shell=True` is given explicitly. The child learns which
attempt it serves from `AGENTCRON_*` environment variables (use `AGENTCRON_OCCURRENCE_KEY` to
make side effects idempotent).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agentcron.handlers.base import HandlerError, HandlerOutcome, RunContext
from agentcron.handlers.checks import (
    checked_bool,
    checked_kill_grace_s,
    checked_tail_bytes,
)
from agentcron.handlers.persisted import checked_fields
from agentcron.policies.errors import shown

__all__ = ["Command", "CommandExitError", "context_environment", "split_command"]

_OPTIONAL_FIELDS = ("cwd", "env", "shell", "output_tail_bytes", "kill_grace_s", "ok_codes")


class CommandExitError(HandlerError):
    """The command ended with a status outside `ok_codes` (or was killed by a signal)."""

    def __init__(self, message: str, *, returncode: int, output_tail: str | None) -> None:
        super().__init__(message, output_tail=output_tail)
        self.returncode = returncode


class Command:
    """A program to run for each attempt.

    `argv` is a list of arguments, or a string split like a shell would split it (but never
    run by one unless `shell=True`). `env` is merged over `os.environ` at run time. The run
    succeeds when the exit status is in `ok_codes`; otherwise it fails with
    `CommandExitError` carrying the output tail. On cancel or timeout the whole process tree
    is terminated, then killed after `kill_grace_s` seconds.
    """

    def __init__(
        self,
        argv: Sequence[str] | str,
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        shell: bool = False,
        output_tail_bytes: int = 4096,
        kill_grace_s: float = 5.0,
        ok_codes: Iterable[int] = (0,),
    ) -> None:
        self.source: str | tuple[str, ...] = _checked_source(argv)
        self.shell = checked_bool(shell, "command shell")
        self.argv: tuple[str, ...] = () if self.shell else tuple(split_command(self.source))
        if self.argv and not self.argv[0].strip():
            # The OS would refuse it at every run ("program '' is not executable").
            raise ValueError("command argv: the program (first argument) is empty")
        if cwd is not None and not isinstance(cwd, str | os.PathLike):
            raise ValueError(f"command cwd must be a directory path (text), got {shown(cwd)}")
        self.cwd = None if cwd is None else os.fspath(cwd)
        if self.cwd is not None and "\0" in self.cwd:
            raise ValueError("command cwd: the path contains a NUL character")
        self.env = _checked_env(env)
        self.output_tail_bytes = checked_tail_bytes(output_tail_bytes, "command output_tail_bytes")
        self.kill_grace_s = checked_kill_grace_s(kill_grace_s, "command kill_grace_s")
        self.ok_codes = _checked_codes(ok_codes)

    async def run(self, ctx: RunContext) -> HandlerOutcome:
        # Imported here: the supervisor needs psutil, which a scheduler of Python callables
        # never has to load.
        from agentcron.handlers.child_records import ChildLabel
        from agentcron.handlers.supervisor import run_child

        environment = {**os.environ, **context_environment(ctx), **(self.env or {})}
        try:
            result = await run_child(
                self._shell_line() if self.shell else self.argv,
                shell=self.shell,
                cwd=self.cwd,
                env=environment,
                output_limit_bytes=self.output_tail_bytes,
                kill_grace_s=self.kill_grace_s,
                label=ChildLabel(job_id=ctx.job_id, run_id=ctx.run_id, what=self.describe()),
            )
        except OSError as exc:
            raise HandlerError(self._start_failure(exc)) from exc
        tail = result.output.text()
        if result.returncode in self.ok_codes:
            return HandlerOutcome(output_tail=tail, value=result.returncode)
        raise CommandExitError(
            describe_returncode(result.returncode), returncode=result.returncode, output_tail=tail
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "command",
            "argv": self.source if isinstance(self.source, str) else list(self.source),
            "cwd": self.cwd,
            "env": dict(self.env) if self.env is not None else None,
            "shell": self.shell,
            "output_tail_bytes": self.output_tail_bytes,
            "kill_grace_s": self.kill_grace_s,
            "ok_codes": list(self.ok_codes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Command:
        fields = checked_fields(data, kind="command", required=("argv",), optional=_OPTIONAL_FIELDS)
        return cls(fields.pop("argv"), **fields)

    def describe(self) -> str:
        text = self.source if isinstance(self.source, str) else _join(self.source)
        return f"{'shell' if self.shell else 'command'} {text}"

    def __repr__(self) -> str:
        return f"Command({self.source!r}, shell={self.shell!r}, cwd={self.cwd!r})"

    def _shell_line(self) -> str:
        return self.source if isinstance(self.source, str) else _join(self.source)

    def _start_failure(self, exc: OSError) -> str:
        if self.cwd is not None and not os.path.isdir(self.cwd):
            return f"cannot start {self.describe()}: working directory {self.cwd!r} does not exist"
        program = "the shell" if self.shell else repr(self.argv[0])
        if isinstance(exc, FileNotFoundError):
            return f"cannot start {self.describe()}: program {program} not found"
        if isinstance(exc, PermissionError):
            return f"cannot start {self.describe()}: program {program} is not executable"
        return f"cannot start {self.describe()}: {exc}"


def context_environment(ctx: RunContext) -> dict[str, str]:
    """The `AGENTCRON_*` variables that tell a child process which attempt it serves."""
    return {
        "AGENTCRON_JOB_ID": ctx.job_id,
        "AGENTCRON_RUN_ID": ctx.run_id,
        "AGENTCRON_ATTEMPT": str(ctx.attempt),
        "AGENTCRON_SCHEDULED_FOR": ctx.scheduled_for.isoformat(),
        "AGENTCRON_OCCURRENCE_KEY": ctx.occurrence_key,
    }


def describe_returncode(returncode: int) -> str:
    """`"exit status 3"`, or `"killed by signal SIGKILL (9)"` for a negative POSIX status."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal"
        return f"killed by signal {name} ({-returncode})"
    return f"exit status {returncode}"


def split_command(command: str | Sequence[str]) -> list[str]:
    """Split a command string into argv the way the platform's programs would parse it."""
    if not isinstance(command, str):
        return list(command)
    try:
        argv = _split_windows(command) if sys.platform == "win32" else shlex.split(command)
    except ValueError as exc:
        raise ValueError(f"cannot split command {shown(command)}: {exc}") from exc
    if not argv:
        raise ValueError(f"command {shown(command)} is empty")
    return argv


def _split_windows(command: str) -> list[str]:
    # CreateProcess takes one command line and the child parses it (usually by these rules);
    # splitting with the same rules lets `list2cmdline` rebuild an equivalent line.
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        shell32 = ctypes.windll.shell32
        shell32.CommandLineToArgvW.argtypes = [wintypes.LPCWSTR, ctypes.POINTER(ctypes.c_int)]
        shell32.CommandLineToArgvW.restype = ctypes.POINTER(wintypes.LPWSTR)
        ctypes.windll.kernel32.LocalFree.argtypes = [ctypes.c_void_p]
        count = ctypes.c_int()
        array = shell32.CommandLineToArgvW(command, ctypes.byref(count))
        if not array:
            raise ValueError("CommandLineToArgvW failed")
        try:
            return [array[i] for i in range(count.value)]
        finally:
            ctypes.windll.kernel32.LocalFree(array)
    return shlex.split(command)


def _join(argv: Sequence[str]) -> str:
    return subprocess.list2cmdline(argv) if sys.platform == "win32" else shlex.join(argv)


def _checked_source(argv: object) -> str | tuple[str, ...]:
    # A NUL cannot reach a program (C strings end there): every run would fail.
    if isinstance(argv, str):
        if not argv.strip():
            raise ValueError("command argv: the command string is empty")
        if "\0" in argv:
            raise ValueError("command argv: the command string contains a NUL character")
        return argv
    if isinstance(argv, bytes) or not isinstance(argv, Sequence):
        raise ValueError(f"command argv must be a list of strings or a string, got {shown(argv)}")
    items = tuple(argv)
    if not items:
        raise ValueError("command argv: the argument list is empty")
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"command argv: every argument must be a string, got {shown(list(items))}")
    for index, item in enumerate(items):
        if "\0" in item:
            raise ValueError(f"command argv[{index}]: contains a NUL character")
    return items


def _checked_env(env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if not isinstance(env, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in env.items()
    ):
        raise ValueError(f"command env must map strings to strings, got {shown(env)}")
    for key, value in env.items():
        # What the OS would refuse at every run ("illegal environment variable name").
        if not key or "=" in key or "\0" in key:
            raise ValueError(
                f"command env: {key[:60]!r} is not a variable name (empty, or has = or NUL)"
            )
        if "\0" in value:
            raise ValueError(f"command env: {key[:60]!r} has a NUL character in its value")
    return dict(env)


def _checked_codes(codes: object) -> tuple[int, ...]:
    if isinstance(codes, str | bytes) or not isinstance(codes, Iterable):
        raise ValueError(f"command ok_codes must be a list of integers, got {shown(codes)}")
    items = tuple(codes)
    if not items or not all(isinstance(c, int) and not isinstance(c, bool) for c in items):
        raise ValueError(
            f"command ok_codes must be a non-empty list of integers, got {shown(codes)}"
        )
    return items
