"""Retry: how many attempts one run gets and how long to wait between them (DESIGN 2.3).

Exactly one layer retries: the engine's runner, driven by `Retry.next_delay`, which is pure
(the random source for jitter is passed in, so tests are exact).
"""

from __future__ import annotations

import importlib
import logging
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentcron.error_text import message_of
from agentcron.policies.errors import (
    JobConfigError,
    check_settings,
    from_dict,
    non_negative,
    positive,
    require,
    shown,
    within_max_duration,
)

__all__ = ["RETRY_JITTERS", "RETRY_STRATEGIES", "Retry"]

RETRY_STRATEGIES = ("fixed", "linear", "exponential", "custom")
RETRY_JITTERS = ("none", "full", "equal")

log = logging.getLogger("agentcron.policies")

ErrorMatcher = type[BaseException] | str
DelayFn = Callable[[int], float]


def _matches(error: BaseException, pattern: ErrorMatcher) -> bool:
    if isinstance(pattern, type):
        return isinstance(error, pattern)
    names = [cls.__name__ for cls in type(error).__mro__]
    if any(pattern in name for name in names):
        return True
    try:
        return pattern in str(error)
    except Exception:  # the handler's `__str__` raised: its message matches nothing
        return False


def _reference(fn: Callable[..., Any]) -> str | None:
    """`"module:qualname"` of a module-level function, or None when no such name leads back
    to `fn` (a lambda, a nested function, a partial, a callable object, a bound method)."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not module or not isinstance(qualname, str):
        return None
    if not qualname or "<" in qualname:
        return None
    loaded = sys.modules.get(module)
    if loaded is not None:  # (one not imported yet is checked when the job is loaded)
        found: Any = loaded
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if found is not fn and found != fn:  # (a bound classmethod is made anew each time)
            return None
    return f"{module}:{qualname}"


def _resolve(ref: str) -> DelayFn:
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise JobConfigError("retry.delay_fn", f"cannot import {ref!r}: {exc}") from exc
    if not callable(obj):
        raise JobConfigError("retry.delay_fn", f"{ref!r} is not callable")
    return obj  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Retry:
    """Retry policy of a job. The default (`max_attempts=1`) never retries.

    Delay before attempt `n + 1` after attempt `n` failed:
    `fixed` = base, `linear` = base * n, `exponential` = base * multiplier ** (n - 1),
    `custom` = `delay_fn(n)`; then capped at `max_delay`, then jittered: `full` draws
    uniformly in [0, d], `equal` in [d/2, d].

    `retry_on` (empty = every error) and `no_retry_on` (wins over `retry_on`) hold exception
    classes (isinstance) or strings matched as substrings of the exception's class names
    (its MRO) or of its message, as in the spec.
    """

    max_attempts: int = 1
    strategy: str = "exponential"
    base_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: str = "none"
    retry_on: tuple[ErrorMatcher, ...] = ()
    no_retry_on: tuple[ErrorMatcher, ...] = ()
    #: Part of equality and hash: two policies with different functions are different
    #: policies (jobs with equal options share one options object).
    delay_fn: DelayFn | None = None

    def __post_init__(self) -> None:
        require(
            isinstance(self.max_attempts, int)
            and not isinstance(self.max_attempts, bool)
            and self.max_attempts >= 1,
            "retry.max_attempts",
            f"must be an integer >= 1, got {self.max_attempts!r}",
        )
        require(
            self.strategy in RETRY_STRATEGIES,
            "retry.strategy",
            f"unknown strategy {shown(self.strategy)}; use one of {', '.join(RETRY_STRATEGIES)}",
        )
        require(
            self.jitter in RETRY_JITTERS,
            "retry.jitter",
            f"unknown jitter {shown(self.jitter)}; use one of {', '.join(RETRY_JITTERS)}",
        )
        check_settings(self, "retry")
        non_negative(self.base_delay, "retry.base_delay")
        non_negative(self.max_delay, "retry.max_delay")
        within_max_duration(self.max_delay, "retry.max_delay")
        positive(self.multiplier, "retry.multiplier")
        require(
            self.max_delay >= self.base_delay,
            "retry.max_delay",
            f"must be >= base_delay ({self.base_delay}), got {self.max_delay}",
        )
        require(
            (self.strategy == "custom") == (self.delay_fn is not None),
            "retry.delay_fn",
            "a callable delay_fn(attempt) -> seconds is required with strategy 'custom' "
            "and only then",
        )
        # Jobs are stored with a reference to it: refused now, not when the job is saved.
        require(
            self.delay_fn is None or _reference(self.delay_fn) is not None,
            "retry.delay_fn",
            "must be a module-level function (jobs store it as a 'module:function'"
            " reference); a lambda or a function defined inside another cannot be stored",
        )
        for name in ("retry_on", "no_retry_on"):
            patterns = getattr(self, name)
            if isinstance(patterns, (str, type)):
                object.__setattr__(self, name, (patterns,))
                patterns = getattr(self, name)
            require(
                isinstance(patterns, (tuple, list, set, frozenset)),
                f"retry.{name}",
                f"expected exception classes or strings (or a list of them), got {patterns!r}",
            )
            object.__setattr__(self, name, tuple(patterns))
            for p in getattr(self, name):
                ok = isinstance(p, str) or (isinstance(p, type) and issubclass(p, BaseException))
                require(ok, f"retry.{name}", f"expected exception classes or strings, got {p!r}")

    def should_retry(self, error: BaseException) -> bool:
        """Whether `error` may be retried at all (ignores the attempt count)."""
        if any(_matches(error, p) for p in self.no_retry_on):
            return False
        return not self.retry_on or any(_matches(error, p) for p in self.retry_on)

    def base_delay_for(self, attempt: int) -> float:
        """The delay after attempt `attempt` failed, before jitter, capped at `max_delay`."""
        if self.strategy == "fixed":
            delay = self.base_delay
        elif self.strategy == "linear":
            delay = self.base_delay * attempt
        elif self.strategy == "exponential":
            try:
                delay = self.base_delay * self.multiplier ** (attempt - 1)
            except OverflowError:  # 2.0 ** 1024: far past any cap
                delay = self.max_delay
        else:
            delay = self._custom_delay(attempt)
        return max(0.0, min(delay, self.max_delay))

    def _custom_delay(self, attempt: int) -> float:
        """`delay_fn(attempt)`; user code, so a call that raises or returns no number of
        seconds (None, "5", NaN) waits `max_delay` (logged) instead of failing the run's
        task at fire time, which would leave the run `running` until its lease expired."""
        assert self.delay_fn is not None
        try:
            delay = self.delay_fn(attempt)
            if isinstance(delay, bool) or not isinstance(delay, int | float):
                raise TypeError(f"it returned {shown(delay)}, not a number of seconds")
            seconds = float(delay)
            if math.isnan(seconds):
                raise ValueError("it returned NaN")
        except Exception as exc:
            log.warning(
                "retry delay_fn %s failed for attempt %d (%s: %s); waiting max_delay %gs",
                shown(self.delay_fn),
                attempt,
                type(exc).__name__,
                message_of(exc),
                self.max_delay,
            )
            return self.max_delay
        return seconds

    def next_delay(
        self, attempt: int, error: BaseException, *, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None: give up (no attempts left
        or the error is not retryable)."""
        if attempt >= self.max_attempts or not self.should_retry(error):
            return None
        delay = self.base_delay_for(attempt)
        if self.jitter == "none":
            return delay
        draw = (rng or random).random()
        if self.jitter == "full":
            return delay * draw
        return delay / 2 + delay / 2 * draw

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "max_attempts": self.max_attempts,
            "strategy": self.strategy,
            "base_delay": self.base_delay,
            "max_delay": self.max_delay,
            "multiplier": self.multiplier,
            "jitter": self.jitter,
        }
        if self.retry_on:
            out["retry_on"] = [p if isinstance(p, str) else p.__name__ for p in self.retry_on]
        if self.no_retry_on:
            out["no_retry_on"] = [p if isinstance(p, str) else p.__name__ for p in self.no_retry_on]
        if self.delay_fn is not None:
            ref = _reference(self.delay_fn)
            if ref is None:
                raise JobConfigError(
                    "retry.delay_fn", "a custom delay function must be a module-level function"
                )
            out["delay_fn"] = ref
        return out

    @classmethod
    def from_value(cls, value: object) -> Retry:
        """Accept a `Retry`, None (no retry), an int (max_attempts) or a dict."""
        if value is None:
            return _NO_RETRY
        if isinstance(value, Retry):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(max_attempts=value)
        if isinstance(value, dict):
            data = dict(value)
            fn = data.pop("delay_fn", None)
            if isinstance(fn, str):
                data["delay_fn"] = _resolve(fn)
            elif fn is not None:
                data["delay_fn"] = fn
            for key in ("retry_on", "no_retry_on"):
                if key in data and isinstance(data[key], list):
                    data[key] = tuple(data[key])
            return from_dict(cls, data, "retry")
        raise JobConfigError("retry", f"expected Retry, int or dict, got {value!r}")


_NO_RETRY = Retry()
