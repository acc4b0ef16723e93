"""Job policies: overlap, retry, circuit breaker and misfire. Each is a small frozen object
whose decisions are pure functions of plain data and `now`."""

from __future__ import annotations

from agentcron.policies.circuit import Circuit, CircuitBreaker, CircuitState
from agentcron.policies.errors import JobConfigError
from agentcron.policies.misfire import Misfire, MisfireDecision, decide_misfire
from agentcron.policies.overlap import Overlap, OverlapAction
from agentcron.policies.retry import Retry

__all__ = [
    "Circuit",
    "CircuitBreaker",
    "CircuitState",
    "JobConfigError",
    "Misfire",
    "MisfireDecision",
    "Overlap",
    "OverlapAction",
    "Retry",
    "decide_misfire",
]
