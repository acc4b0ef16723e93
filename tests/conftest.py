"""Settings for the whole test suite.

`AGENTCRON_TEST_EAGER_TASKS=1` (Python 3.12 or newer) runs every asyncio test on a loop whose
task factory is `asyncio.eager_task_factory`, as an application may set it: a task then runs
its first step inside `create_task`, before the line after it. Code that creates a task and
only then prepares what the task reads works on the default loop and breaks there (it did:
a finished run was kept forever, a skip record was lost), so `make test` runs the engine,
queue, alert, heartbeat and handler suites once more this way (`scripts/test-eager`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Iterator

import pytest

if os.environ.get("AGENTCRON_TEST_EAGER_TASKS") == "1":
    if sys.version_info < (3, 12):
        raise pytest.UsageError(
            "AGENTCRON_TEST_EAGER_TASKS=1 needs Python 3.12 or newer (asyncio.eager_task_factory);"
            " run it with the interpreter scripts/newer-python prints"
        )

    def _eager_loop() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined,unused-ignore]
        return loop

    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
        return {"eager-tasks": _eager_loop}


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """Undo what a test's `configure_logging` did to the root logger: its handlers (closed)
    and its level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)
