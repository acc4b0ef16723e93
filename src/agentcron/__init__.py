"""agentcron: the scheduling layer that keeps a personal AI agent working 24/7.

`import agentcron` stays light: the web dashboard, Redis and platform modules are imported
only by the modules that use them.

    from agentcron import Scheduler, Retry, CircuitBreaker, Command
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentcron.clock import Clock, SystemClock
    from agentcron.engine import JobNotFoundError, JobView, Scheduler, SchedulerNotRunningError
    from agentcron.events import EventBus
    from agentcron.handlers import Command, Http, RunContext
    from agentcron.jobs import Job
    from agentcron.models import RunRecord, RunStatus, SkipReason
    from agentcron.policies import CircuitBreaker, JobConfigError, Misfire, Overlap, Retry
    from agentcron.triggers import CronTrigger, Date, Interval, Reboot

#: Where each public name lives; imported on first access (PEP 562), so `import agentcron`
#: loads nothing heavy.
_EXPORTS = {
    "Clock": "agentcron.clock",
    "SystemClock": "agentcron.clock",
    "JobNotFoundError": "agentcron.engine",
    "JobView": "agentcron.engine",
    "Scheduler": "agentcron.engine",
    "SchedulerNotRunningError": "agentcron.engine",
    "EventBus": "agentcron.events",
    "Command": "agentcron.handlers",
    "Http": "agentcron.handlers",
    "RunContext": "agentcron.handlers",
    "Job": "agentcron.jobs",
    "RunRecord": "agentcron.models",
    "RunStatus": "agentcron.models",
    "SkipReason": "agentcron.models",
    "CircuitBreaker": "agentcron.policies",
    "JobConfigError": "agentcron.policies",
    "Misfire": "agentcron.policies",
    "Overlap": "agentcron.policies",
    "Retry": "agentcron.policies",
    "CronTrigger": "agentcron.triggers",
    "Date": "agentcron.triggers",
    "Interval": "agentcron.triggers",
    "Reboot": "agentcron.triggers",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agentcron' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0"

__all__ = [
    "CircuitBreaker",
    "Clock",
    "Command",
    "CronTrigger",
    "Date",
    "EventBus",
    "Http",
    "Interval",
    "Job",
    "JobConfigError",
    "JobNotFoundError",
    "JobView",
    "Misfire",
    "Overlap",
    "Reboot",
    "Retry",
    "RunContext",
    "RunRecord",
    "RunStatus",
    "Scheduler",
    "SchedulerNotRunningError",
    "SkipReason",
    "SystemClock",
    "__version__",
]
