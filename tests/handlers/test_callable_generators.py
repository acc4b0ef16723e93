"""Generator functions are refused as handlers: calling one only creates a generator, so
its body would never run (and the run would be recorded `succeeded`)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from agentcron.engine import Scheduler
from agentcron.handlers import HandlerReferenceError, RunContext, as_handler
from agentcron.jobs import JobConfigError, build_job
from agentcron.store.memory import MemoryStore


async def async_generator_job() -> AsyncIterator[int]:
    yield 1  # a stray yield: this is an async generator function


def sync_generator_job(ctx: RunContext) -> Iterator[int]:
    yield 1


class GeneratorCallable:
    def __call__(self) -> Iterator[int]:
        yield 1


GENERATORS: list[Callable[..., Any]] = [async_generator_job, sync_generator_job]


def _scheduler() -> Scheduler:
    return Scheduler(store=MemoryStore(), rng=random.Random(0))


@pytest.mark.parametrize("func", [*GENERATORS, GeneratorCallable()])
def test_a_generator_function_is_refused_at_add_job_naming_the_handler(
    func: Callable[..., Any],
) -> None:
    with pytest.raises(JobConfigError) as refused:
        _scheduler().add_job("gen", trigger="0 9 * * *", handler=func)
    assert refused.value.field == "handler"
    assert "generator function cannot be a handler" in str(refused.value)
    assert "never run its body" in str(refused.value)


@pytest.mark.parametrize("func", GENERATORS)
def test_a_generator_function_is_refused_by_the_decorators(func: Callable[..., Any]) -> None:
    sched = _scheduler()
    with pytest.raises(JobConfigError) as by_cron:
        sched.cron("0 9 * * *")(func)
    with pytest.raises(JobConfigError) as by_interval:
        sched.interval(minutes=5)(func)
    assert by_cron.value.field == by_interval.value.field == "handler"


@pytest.mark.parametrize("name", ["async_generator_job", "sync_generator_job"])
def test_a_reference_to_a_generator_function_is_refused_when_resolved(name: str) -> None:
    ref = f"{__name__}:{name}"
    with pytest.raises(HandlerReferenceError, match="generator function"):
        as_handler(ref)
    with pytest.raises(JobConfigError) as refused:
        build_job("gen", trigger="0 9 * * *", handler=ref)
    assert refused.value.field == "handler"


def test_a_generator_function_is_refused_for_a_child_process_too() -> None:
    with pytest.raises(JobConfigError) as refused:
        build_job("gen", trigger="0 9 * * *", handler=sync_generator_job, isolation="process")
    assert refused.value.field == "handler"
