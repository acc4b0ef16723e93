"""Python callables: on the loop, in a thread, with or without the run context."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import handler_samples
import pytest
from handler_helpers import make_context

from agentcron.handlers import (
    CallableHandler,
    HandlerNotPersistableError,
    HandlerOutcome,
    HandlerReferenceError,
    RunContext,
    as_handler,
)


async def test_an_async_function_runs_on_the_loop_without_the_context() -> None:
    outcome = await as_handler(handler_samples.async_answer).run(make_context())
    assert outcome == HandlerOutcome(value=43)


async def test_an_async_function_receives_the_context_when_it_takes_one_argument() -> None:
    outcome = await as_handler(handler_samples.async_context_job_id).run(make_context("mail"))
    assert outcome.value == "mail"


async def test_a_sync_function_runs_in_a_worker_thread() -> None:
    seen: list[int] = []

    def job() -> None:
        seen.append(threading.get_ident())

    await as_handler(job).run(make_context())
    assert seen and seen[0] != threading.get_ident()


async def test_a_sync_function_receives_the_context() -> None:
    outcome = await as_handler(handler_samples.context_summary).run(make_context("j", attempt=2))
    assert outcome.value == {
        "job_id": "j",
        "run_id": "run-1",
        "attempt": 2,
        "occurrence_key": "j@2026-03-08T06:00:00+00:00",
        "scheduled_for": "2026-03-08T06:00:00+00:00",
    }


async def test_an_optional_parameter_named_ctx_gets_the_context_but_other_optionals_do_not() -> (
    None
):
    assert (await as_handler(handler_samples.optional_context).run(make_context())).value is True
    assert (await as_handler(handler_samples.optional_flag).run(make_context())).value is False


async def test_an_async_callable_object_is_awaited() -> None:
    class Job:
        async def __call__(self, ctx: RunContext) -> str:
            return ctx.node_id

    assert (await as_handler(Job()).run(make_context())).value == "node-a"


def test_only_an_async_function_given_with_the_context_on_the_loop_is_awaited_directly() -> None:
    # `direct` lets the engine skip `run()`: only where `run()` would add nothing.
    async def job(ctx: RunContext) -> None:
        pass

    async def no_context() -> None:
        pass

    class Job:
        async def __call__(self, ctx: RunContext) -> None:
            pass

    def sync_job(ctx: RunContext) -> None:
        pass

    assert CallableHandler(job).direct is job
    assert CallableHandler(no_context).direct is None
    assert CallableHandler(Job()).direct is None
    assert CallableHandler(sync_job).direct is None
    assert CallableHandler("handler_samples:async_context_job_id").direct is None
    process = CallableHandler("handler_samples:async_context_job_id", isolation="process")
    assert process.direct is None


async def test_an_exception_from_the_function_propagates_unchanged() -> None:
    with pytest.raises(ValueError, match="the answer is not 42"):
        await as_handler(handler_samples.raise_value_error).run(make_context())


async def test_garbage_return_values_become_a_bounded_repr() -> None:
    outcome = await as_handler(handler_samples.return_garbage).run(make_context())
    assert isinstance(outcome.value, str)
    assert outcome.value.startswith("{'handle': <object object at")


async def test_a_returned_outcome_is_kept_but_bounded() -> None:
    outcome = await as_handler(handler_samples.return_outcome).run(make_context())
    assert outcome.value == "{'set': {1, 2}}"
    assert outcome.output_tail is not None and len(outcome.output_tail) < 20_000


async def test_cancelling_an_async_function_cancels_it() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def job() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(as_handler(job).run(make_context()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


async def test_a_reference_string_is_resolved_and_run() -> None:
    handler = as_handler("handler_samples:answer")
    assert (await handler.run(make_context())).value == 42
    assert handler.describe() == "python handler_samples:answer"


async def test_a_reference_is_resolved_again_at_each_run(monkeypatch: pytest.MonkeyPatch) -> None:
    handler = as_handler("handler_samples:answer")
    monkeypatch.setattr(handler_samples, "answer", lambda ctx: ctx.job_id)
    assert (await handler.run(make_context("redeployed"))).value == "redeployed"


def test_a_function_that_needs_two_arguments_is_rejected_at_creation() -> None:
    with pytest.raises(HandlerReferenceError, match="two_arguments"):
        as_handler(handler_samples.two_arguments)


def test_module_level_functions_have_a_reference_and_lambdas_do_not() -> None:
    assert CallableHandler(handler_samples.answer).ref == "handler_samples:answer"
    anonymous = as_handler(lambda: 1)
    with pytest.raises(HandlerNotPersistableError, match="lambda"):
        anonymous.to_dict()


def test_closures_and_bound_methods_are_not_persistable() -> None:
    def local() -> None:
        pass

    class Holder:
        def method(self) -> None:
            pass

    for target in (local, Holder().method):
        with pytest.raises(HandlerNotPersistableError):
            as_handler(target).to_dict()


@pytest.mark.parametrize("isolation", ["fork", "", None])
def test_an_unknown_isolation_is_rejected(isolation: Any) -> None:
    with pytest.raises(ValueError, match="isolation"):
        as_handler(handler_samples.answer, isolation=isolation)
