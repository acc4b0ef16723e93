"""A retry policy's `delay_fn` is part of its identity: policies with different functions
are different policies, and jobs never share one another's."""

from __future__ import annotations

from collections.abc import Callable

from agentcron.jobs import build_job
from agentcron.policies import Retry


def squares(attempt: int) -> float:
    return float(attempt * attempt)


def huge(attempt: int) -> float:
    return 40.0


async def noop() -> None:
    return None


def _custom(delay_fn: Callable[[int], float]) -> Retry:
    return Retry(max_attempts=4, strategy="custom", delay_fn=delay_fn, max_delay=50)


def test_policies_with_different_delay_functions_are_not_equal_nor_hash_alike() -> None:
    assert _custom(squares) != _custom(huge)
    assert _custom(squares) == _custom(squares)
    assert hash(_custom(squares)) == hash(_custom(squares))
    assert len({_custom(squares), _custom(huge)}) == 2


def test_jobs_with_different_delay_functions_each_keep_their_own() -> None:
    fast = build_job("fast", trigger="0 9 * * *", handler=noop, retry=_custom(squares))
    slow = build_job("slow", trigger="0 9 * * *", handler=noop, retry=_custom(huge))
    assert fast.retry.delay_fn is squares
    assert slow.retry.delay_fn is huge
    assert slow.retry.next_delay(1, RuntimeError()) == 40.0


def test_a_stored_delay_function_reference_comes_back_as_an_equal_policy() -> None:
    again = Retry.from_value(_custom(squares).to_dict())
    assert again == _custom(squares)
    assert again.delay_fn is squares
