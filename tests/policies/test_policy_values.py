"""Policies built directly (not from a dict) check their values' types as the dict form
does, and refuse durations that would overflow `datetime` arithmetic at fire time."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from agentcron.policies import CircuitBreaker, JobConfigError, Misfire, Overlap, Retry

INF = float("inf")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        # TypeError: '>=' not supported between instances of 'str' and 'int'
        (lambda: Overlap("concurrent", max_concurrent="2"), "overlap.max_concurrent"),
        (lambda: Misfire(grace_s="1"), "misfire.grace"),
        (lambda: Retry(base_delay="1"), "retry.base_delay"),
        (lambda: CircuitBreaker(failure_threshold="5"), "circuit.failure_threshold"),
        # accepted: bools and fractions where whole numbers are expected
        (lambda: Overlap("queue", max_queue=True), "overlap.max_queue"),
        (lambda: Misfire("run_all", max_catchup=1.5), "misfire.max_catchup"),
        (lambda: Misfire("run_all", max_catchup=True), "misfire.max_catchup"),
        (lambda: Retry(max_attempts=True), "retry.max_attempts"),
        (lambda: CircuitBreaker(failure_threshold=True), "circuit.failure_threshold"),
        (lambda: CircuitBreaker(name=5), "circuit.name"),
        # accepted: infinite or absurd durations
        (lambda: Overlap("delay", delay_s=INF), "overlap.delay"),
        (lambda: Misfire(grace_s=INF), "misfire.grace"),
        (lambda: Misfire(catchup_window_s=1e300), "misfire.catchup_window"),
        (lambda: Retry(max_attempts=2, max_delay=INF), "retry.max_delay"),
        (lambda: Retry(max_attempts=2, multiplier=INF), "retry.multiplier"),
        (lambda: CircuitBreaker(reset_timeout=INF), "circuit.reset_timeout"),
        (lambda: CircuitBreaker(reset_timeout=1e300), "circuit.reset_timeout"),
    ],
)
def test_policies_built_directly_refuse_values_of_the_wrong_type_or_size(
    make: Callable[[], object], field: str
) -> None:
    with pytest.raises(JobConfigError) as info:
        make()
    assert info.value.field == field


def test_a_huge_number_for_a_duration_is_refused_not_an_overflow_error() -> None:
    # `math.isfinite(10**400)` raised OverflowError inside the type check itself.
    with pytest.raises(JobConfigError) as info:
        Overlap.from_value({"policy": "delay", "delay": 10**400})
    assert info.value.field == "overlap.delay"


def test_an_exponential_delay_past_the_float_range_is_capped_at_max_delay() -> None:
    retry = Retry(max_attempts=2000, base_delay=1.0, multiplier=2.0, max_delay=60.0)
    # 2.0 ** 1100 raised OverflowError (at fire time, in the runner).
    assert retry.next_delay(1101, RuntimeError()) == 60.0


def fails_to_compute(attempt: int) -> float:
    raise ZeroDivisionError("oops")


def returns_text(attempt: int) -> float:
    return "5"  # type: ignore[return-value]


def returns_nan(attempt: int) -> float:
    return float("nan")


@pytest.mark.parametrize("delay_fn", [fails_to_compute, returns_text, returns_nan])
def test_a_custom_delay_function_that_fails_waits_max_delay_and_is_logged(
    delay_fn: Callable[[int], float], caplog: pytest.LogCaptureFixture
) -> None:
    # Its exception escaped into the runner: the run stayed `running` until its lease ended.
    retry = Retry(max_attempts=3, strategy="custom", delay_fn=delay_fn, max_delay=7.0)
    with caplog.at_level(logging.WARNING, logger="agentcron.policies"):
        assert retry.next_delay(1, RuntimeError()) == 7.0
    assert "waiting max_delay 7s" in caplog.text
