"""The engine: `Scheduler` (the loop and API) and `Runner` (one run with its policies)."""

from __future__ import annotations

from agentcron.engine.errors import JobNotFoundError, SchedulerNotRunningError
from agentcron.engine.scheduler import Dispatch, JobView, Scheduler

__all__ = ["Dispatch", "JobNotFoundError", "JobView", "Scheduler", "SchedulerNotRunningError"]
