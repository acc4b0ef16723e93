"""The dict form of every policy (what `agentcron.toml`, the API and `add_job` take): each
mistake is a `JobConfigError` naming `policy.key`, never a Python error text."""

from __future__ import annotations

import pytest

from agentcron.policies import JobConfigError
from agentcron.policies.circuit import CircuitBreaker
from agentcron.policies.misfire import Misfire
from agentcron.policies.overlap import Overlap
from agentcron.policies.retry import Retry

PARSERS = {
    "retry": Retry.from_value,
    "misfire": Misfire.from_value,
    "overlap": Overlap.from_value,
    "circuit": CircuitBreaker.from_value,
}


@pytest.mark.parametrize(
    ("policy", "value", "field", "message"),
    [
        # Before: "Retry.__init__() got an unexpected keyword argument 'bogus'".
        ("retry", {"bogus": 1}, "retry.bogus", "unknown key; use one of max_attempts"),
        ("circuit", {"bogus": 1}, "circuit.bogus", "unknown key"),
        # Before: "'>=' not supported between instances of 'str' and 'int'".
        ("misfire", {"policy": "run_all", "max_catchup": "a"}, "misfire.max_catchup", "number"),
        ("overlap", {"policy": "concurrent", "max_concurrent": "2"}, "overlap.max_concurrent",
         "number"),
        ("circuit", {"failure_threshold": "5"}, "circuit.failure_threshold", "number"),
        ("retry", {"max_attempts": True}, "retry.max_attempts", "number"),
        ("misfire", {"grace_s": None}, "misfire.grace_s", "number"),
    ],
)  # fmt: skip
def test_a_mistake_in_a_policy_dict_names_the_key(
    policy: str, value: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(JobConfigError, match=message) as info:
        PARSERS[policy](value)
    assert info.value.field == field


def test_a_setting_that_may_be_none_takes_none() -> None:
    assert (
        Misfire.from_value({"policy": "run_all", "catchup_window_s": None}).catchup_window_s is None
    )
    assert CircuitBreaker.from_value({"name": None}) == CircuitBreaker()
