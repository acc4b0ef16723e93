"""Handler input and behaviour nobody should give, handled anyway: references that are huge
or fail to import oddly, and sync functions raising StopIteration."""

from __future__ import annotations

import asyncio

import pytest

from agentcron.handlers import HandlerReferenceError, as_handler
from agentcron.handlers.threads import SyncThreads

WAIT_S = 30.0  # only a bound against a broken test


def test_a_module_failing_to_import_with_an_unprintable_error_is_a_reference_error() -> None:
    # Formatting the message ran the error's __str__, whose RuntimeError escaped instead.
    with pytest.raises(HandlerReferenceError) as caught:
        as_handler("broken_import_sample:run")
    message = str(caught.value)
    assert "'broken_import_sample:run'" in message and "Unprintable" in message


def test_a_huge_reference_is_quoted_shortened_in_its_error() -> None:
    with pytest.raises(HandlerReferenceError) as caught:
        as_handler("pkg.mod:" + "a" * 100_000 + "!")
    assert len(str(caught.value)) < 300


def raises_stop_iteration() -> None:
    raise StopIteration


async def test_a_sync_function_raising_stop_iteration_fails_with_a_runtime_error() -> None:
    # An asyncio future refuses StopIteration: the caller used to wait forever.
    threads = SyncThreads(max_workers=2)
    try:
        with pytest.raises(RuntimeError, match="raises_stop_iteration raised StopIteration"):
            await asyncio.wait_for(threads.run(raises_stop_iteration), WAIT_S)
    finally:
        threads.shutdown()
