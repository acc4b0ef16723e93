from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentcron.policies import Circuit, CircuitBreaker, JobConfigError

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_the_circuit_goes_through_its_full_cycle() -> None:
    circuit = Circuit(
        "api", CircuitBreaker(failure_threshold=3, reset_timeout=60, half_open_max_calls=1)
    )
    assert circuit.allows(T0) == (True, None)
    assert circuit.record(False, T0) is None
    assert circuit.record(False, T0) is None
    assert circuit.record(False, T0) == "opened"
    # open: nothing goes through until reset_timeout
    assert circuit.allows(T0 + timedelta(seconds=59)) == (False, None)
    # half-open: one probe goes through, a second one does not
    assert circuit.allows(T0 + timedelta(seconds=60)) == (True, "half_open")
    assert circuit.allows(T0 + timedelta(seconds=61)) == (False, None)
    # the probe fails: open again, with a fresh reset timeout
    assert circuit.record(False, T0 + timedelta(seconds=62)) == "opened"
    assert circuit.allows(T0 + timedelta(seconds=100)) == (False, None)
    assert circuit.allows(T0 + timedelta(seconds=122)) == (True, "half_open")
    # the probe succeeds: closed, failures forgotten
    assert circuit.record(True, T0 + timedelta(seconds=123)) == "closed"
    assert circuit.state.failures == 0
    assert circuit.allows(T0 + timedelta(seconds=124)) == (True, None)


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    circuit = Circuit("c", CircuitBreaker(failure_threshold=2))
    circuit.record(False, T0)
    circuit.record(True, T0)
    assert circuit.record(False, T0) is None
    assert circuit.state.state == "closed"


def test_half_open_lets_through_at_most_half_open_max_calls() -> None:
    config = CircuitBreaker(failure_threshold=1, reset_timeout=10, half_open_max_calls=2)
    circuit = Circuit("c", config)
    circuit.record(False, T0)
    later = T0 + timedelta(seconds=10)
    assert [circuit.allows(later)[0] for _ in range(3)] == [True, True, False]


def test_a_probe_that_ends_without_a_verdict_frees_its_half_open_slot() -> None:
    circuit = Circuit("c", CircuitBreaker(failure_threshold=1, reset_timeout=10))
    circuit.record(False, T0)
    later = T0 + timedelta(seconds=10)
    assert circuit.allows(later) == (True, "half_open")
    assert circuit.allows(later) == (False, None)
    circuit.release()  # the probe was cancelled
    assert circuit.state.state == "half_open"
    assert circuit.allows(later) == (True, None)


def test_releasing_a_closed_or_open_circuit_changes_nothing() -> None:
    circuit = Circuit("c", CircuitBreaker(failure_threshold=1, reset_timeout=10))
    circuit.release()
    assert circuit.state.state == "closed"
    circuit.record(False, T0)
    before = circuit.state
    circuit.release()
    assert circuit.state == before


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "circuit.failure_threshold"),
        ({"reset_timeout": 0}, "circuit.reset_timeout"),
        ({"half_open_max_calls": 0}, "circuit.half_open_max_calls"),
    ],
)
def test_bad_circuit_options_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(JobConfigError) as info:
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_circuit_config_round_trips_through_a_dict() -> None:
    config = CircuitBreaker(failure_threshold=4, reset_timeout=30, name="gmail")
    assert CircuitBreaker.from_value(config.to_dict()) == config
