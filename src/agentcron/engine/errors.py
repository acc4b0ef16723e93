"""Errors raised by the `Scheduler` API."""

from __future__ import annotations

__all__ = ["JobNotFoundError", "RunInterruptedError", "SchedulerNotRunningError"]


class JobNotFoundError(KeyError):
    """No job with this id."""

    def __str__(self) -> str:
        return f"no job with id {self.args[0]!r}"


class SchedulerNotRunningError(RuntimeError):
    """The call needs a started scheduler (`async with sched:` or `await sched.start()`)."""


class RunInterruptedError(Exception):
    """The process running an attempt died; its lease expired (used to ask the retry policy)."""
