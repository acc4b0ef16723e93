from __future__ import annotations

import functools
import random

import pytest

from agentcron.policies import JobConfigError, Retry


def doubled(attempt: int) -> float:
    return 2.0 * attempt * attempt


def test_the_default_retry_never_retries() -> None:
    assert Retry().next_delay(1, RuntimeError("boom")) is None


def test_fixed_delays_are_the_base_delay() -> None:
    retry = Retry(max_attempts=4, strategy="fixed", base_delay=3.0, max_delay=10.0)
    assert [retry.next_delay(n, RuntimeError()) for n in (1, 2, 3, 4)] == [3.0, 3.0, 3.0, None]


def test_linear_delays_grow_by_the_base_delay() -> None:
    retry = Retry(max_attempts=5, strategy="linear", base_delay=2.0, max_delay=7.0)
    assert [retry.next_delay(n, RuntimeError()) for n in (1, 2, 3, 4)] == [2.0, 4.0, 6.0, 7.0]


def test_exponential_delays_multiply_and_are_capped_at_max_delay() -> None:
    retry = Retry(
        max_attempts=6, strategy="exponential", base_delay=1.0, max_delay=30.0, multiplier=3.0
    )
    assert [retry.next_delay(n, RuntimeError()) for n in (1, 2, 3, 4, 5)] == [
        1.0,
        3.0,
        9.0,
        27.0,
        30.0,
    ]


def test_custom_delays_come_from_the_function_and_are_capped() -> None:
    retry = Retry(
        max_attempts=9, strategy="custom", delay_fn=doubled, base_delay=0.0, max_delay=50.0
    )
    assert [retry.next_delay(n, RuntimeError()) for n in (1, 2, 3, 5)] == [2.0, 8.0, 18.0, 50.0]


def test_full_jitter_stays_between_zero_and_the_delay() -> None:
    retry = Retry(max_attempts=10, strategy="fixed", base_delay=8.0, max_delay=8.0, jitter="full")
    rng = random.Random(7)
    delays = [retry.next_delay(1, RuntimeError(), rng=rng) for _ in range(500)]
    assert all(d is not None and 0.0 <= d <= 8.0 for d in delays)
    assert min(d for d in delays if d is not None) < 1.0


def test_equal_jitter_stays_between_half_the_delay_and_the_delay() -> None:
    retry = Retry(max_attempts=10, strategy="fixed", base_delay=8.0, max_delay=8.0, jitter="equal")
    rng = random.Random(7)
    delays = [retry.next_delay(1, RuntimeError(), rng=rng) for _ in range(500)]
    assert all(d is not None and 4.0 <= d <= 8.0 for d in delays)


def test_jitter_with_a_seeded_rng_is_reproducible() -> None:
    retry = Retry(max_attempts=3, base_delay=1.0, max_delay=9.0, jitter="full")
    first = retry.next_delay(2, RuntimeError(), rng=random.Random(3))
    assert first == retry.next_delay(2, RuntimeError(), rng=random.Random(3))
    assert first == pytest.approx(2.0 * random.Random(3).random())


class RateLimited(Exception):
    pass


def test_retry_on_limits_retries_to_matching_classes_names_or_messages() -> None:
    retry = Retry(max_attempts=3, retry_on=(TimeoutError, "RateLimit", "503"))
    assert retry.next_delay(1, TimeoutError()) is not None
    assert retry.next_delay(1, RateLimited("slow down")) is not None
    assert retry.next_delay(1, RuntimeError("HTTP 503 from upstream")) is not None
    assert retry.next_delay(1, ValueError("bad input")) is None


def test_no_retry_on_wins_over_retry_on() -> None:
    retry = Retry(max_attempts=3, retry_on=("Error",), no_retry_on=(PermissionError, "fatal"))
    assert retry.next_delay(1, RuntimeError("try again")) is not None
    assert retry.next_delay(1, PermissionError("nope")) is None
    assert retry.next_delay(1, RuntimeError("fatal: disk gone")) is None


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message")


def test_an_error_whose_str_raises_matches_by_its_class_names_only() -> None:
    # Matching the message called str() unguarded: the handler's error escaped the runner.
    assert Retry(max_attempts=2, retry_on=("503",)).next_delay(1, Unprintable()) is None
    assert Retry(max_attempts=2, retry_on=("Unprint",)).next_delay(1, Unprintable()) is not None


def test_matching_a_base_class_name_catches_subclasses() -> None:
    retry = Retry(max_attempts=2, no_retry_on=("OSError",))
    assert retry.next_delay(1, FileNotFoundError("x")) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"strategy": "fibonacci"}, "retry.strategy"),
        ({"jitter": "some"}, "retry.jitter"),
        ({"base_delay": 10.0, "max_delay": 5.0}, "retry.max_delay"),
        ({"base_delay": -1.0}, "retry.base_delay"),
        ({"strategy": "custom"}, "retry.delay_fn"),
        ({"retry_on": (42,)}, "retry.retry_on"),
    ],
)
def test_bad_retry_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(JobConfigError) as info:
        Retry(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_retry_round_trips_through_a_dict_with_classes_stored_by_name() -> None:
    retry = Retry(
        max_attempts=4,
        strategy="custom",
        delay_fn=doubled,
        base_delay=0.5,
        max_delay=60,
        jitter="equal",
        retry_on=(TimeoutError, "503"),
        no_retry_on=("fatal",),
    )
    again = Retry.from_value(retry.to_dict())
    assert again.to_dict() == retry.to_dict()
    assert again.delay_fn is doubled
    assert again.should_retry(TimeoutError())
    assert not again.should_retry(TimeoutError("fatal"))


def test_a_lambda_delay_function_is_refused_when_the_retry_is_made() -> None:
    # It passed `add_job`, then failed `start()` (or, added while running, was never stored).
    with pytest.raises(JobConfigError, match="module-level") as refused:
        Retry(max_attempts=2, strategy="custom", delay_fn=lambda n: 1.0)
    assert refused.value.field == "retry.delay_fn"

    def local_delay(attempt: int) -> float:
        return 1.0

    with pytest.raises(JobConfigError, match="module-level"):
        Retry(max_attempts=2, strategy="custom", delay_fn=local_delay)


class Backoff:
    def __call__(self, attempt: int) -> float:
        return float(attempt)

    def delay(self, attempt: int) -> float:
        return float(attempt)


def test_a_delay_function_that_no_module_name_leads_back_to_is_refused_when_made() -> None:
    # A partial was stored as 'functools:' and a callable object as '<module>:', which no
    # restart could import back; a bound method as its class's function, missing `self`.
    for unstorable in (functools.partial(doubled), Backoff(), Backoff().delay):
        with pytest.raises(JobConfigError, match="module-level"):
            Retry(max_attempts=2, strategy="custom", delay_fn=unstorable)
    assert Retry(max_attempts=2, strategy="custom", delay_fn=doubled).to_dict()["delay_fn"] == (
        f"{__name__}:doubled"
    )
