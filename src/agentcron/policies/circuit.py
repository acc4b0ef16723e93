"""Circuit breaker: stop firing a job that keeps failing, probe it again later (DESIGN 2.3).

`CircuitBreaker` is the frozen configuration; `CircuitState` the frozen state; the pure
functions `CircuitBreaker.allows(state, now)`, `CircuitBreaker.record(state, success, now)`
and `CircuitBreaker.release(state)` (a run let through that ended without a verdict) return
the next state. `Circuit` holds the current state for the engine (one per job, or one per
`name` shared by several jobs).

closed --(failure_threshold consecutive failures)--> open --(reset_timeout)--> half_open
half_open --(success)--> closed;  half_open --(failure)--> open
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from agentcron.policies.errors import (
    JobConfigError,
    check_settings,
    from_dict,
    positive,
    require,
    within_max_duration,
)

__all__ = ["Circuit", "CircuitBreaker", "CircuitState"]


@dataclass(frozen=True, slots=True)
class CircuitState:
    state: str = "closed"  # closed | open | half_open
    failures: int = 0
    opened_at: datetime | None = None
    half_open_calls: int = 0


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Configuration. `name` shares one breaker between every job that uses the same name
    (e.g. all jobs calling one flaky API); without it each job has its own."""

    failure_threshold: int = 5
    reset_timeout: float = 60.0
    half_open_max_calls: int = 1
    name: str | None = None

    def __post_init__(self) -> None:
        check_settings(self, "circuit")
        require(
            self.failure_threshold >= 1,
            "circuit.failure_threshold",
            f"must be >= 1, got {self.failure_threshold}",
        )
        positive(self.reset_timeout, "circuit.reset_timeout")
        within_max_duration(self.reset_timeout, "circuit.reset_timeout")
        require(
            self.half_open_max_calls >= 1,
            "circuit.half_open_max_calls",
            f"must be >= 1, got {self.half_open_max_calls}",
        )

    def allows(self, state: CircuitState, now: datetime) -> tuple[bool, CircuitState]:
        """May a run start at `now`? Returns the decision and the state after it."""
        if state.state == "open":
            assert state.opened_at is not None
            if now - state.opened_at < timedelta(seconds=self.reset_timeout):
                return False, state
            state = replace(state, state="half_open", half_open_calls=0)
        if state.state == "half_open":
            if state.half_open_calls >= self.half_open_max_calls:
                return False, state
            return True, replace(state, half_open_calls=state.half_open_calls + 1)
        return True, state

    def record(self, state: CircuitState, success: bool, now: datetime) -> CircuitState:
        """The state after a run finished with `success`."""
        if success:
            return CircuitState()
        failures = state.failures + 1
        if state.state == "half_open" or failures >= self.failure_threshold:
            return CircuitState(state="open", failures=failures, opened_at=now)
        return replace(state, failures=failures)

    def release(self, state: CircuitState) -> CircuitState:
        """The state after a run it let through ended with no verdict (cancelled: replaced,
        removed, stopped): a half-open probe's slot is free again, nothing else changes.

        Invariant: every `allows` that returned True is followed by one `record` or one
        `release`; a probe that ended neither way would hold the breaker half-open for good
        (and every job sharing it skipped)."""
        if state.state == "half_open" and state.half_open_calls > 0:
            return replace(state, half_open_calls=state.half_open_calls - 1)
        return state

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "failure_threshold": self.failure_threshold,
            "reset_timeout": self.reset_timeout,
            "half_open_max_calls": self.half_open_max_calls,
        }
        if self.name is not None:
            out["name"] = self.name
        return out

    @classmethod
    def from_value(cls, value: object) -> CircuitBreaker | None:
        if value is None or isinstance(value, CircuitBreaker):
            return value
        if isinstance(value, dict):
            return from_dict(cls, dict(value), "circuit")
        raise JobConfigError("circuit", f"expected CircuitBreaker or dict, got {value!r}")


class Circuit:
    """The live state of one breaker. Methods return the name of a transition
    (`opened`, `half_open`, `closed`) or None, for the engine to publish."""

    def __init__(self, name: str, config: CircuitBreaker) -> None:
        self.name = name
        self.config = config
        self.state = CircuitState()

    def allows(self, now: datetime) -> tuple[bool, str | None]:
        before = self.state.state
        allowed, self.state = self.config.allows(self.state, now)
        moved = "half_open" if before != "half_open" and self.state.state == "half_open" else None
        return allowed, moved

    def release(self) -> None:
        """A run it let through ended without a verdict (`CircuitBreaker.release`)."""
        self.state = self.config.release(self.state)

    def record(self, success: bool, now: datetime) -> str | None:
        before = self.state.state
        self.state = self.config.record(self.state, success, now)
        after = self.state.state
        if after == before:
            return None
        return "opened" if after == "open" else after
