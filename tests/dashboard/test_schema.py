"""Schemathesis against the OpenAPI document, with a valid token, on a live server.

No 500s, responses match their schemas and documented status codes. `POST /api/jobs` is
left out on purpose: generated bodies would define command and HTTP jobs (it is covered by
`test_api.py`). The example count is kept small for speed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from tests.dashboard.conftest import TOKEN, add_jobs, auth, free_port

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings, create_app
from agentcron.store.memory import MemoryStore


class ThreadedServer:
    """The real engine plus uvicorn, in their own event loop on a thread."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready = threading.Event()
        self.spec: dict[str, Any] = {}
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        sched = Scheduler(store=MemoryStore(), node_id="schema-node")
        add_jobs(sched)
        app = create_app(sched, DashboardSettings(auth_token=TOKEN))
        self.spec = app.openapi()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        async with sched:
            task = asyncio.create_task(self.server.serve())
            while not self.server.started and not task.done():
                await asyncio.sleep(0.01)  # a real uvicorn server starting (noqa: sleep-ok)
            self.ready.set()
            await task

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        assert self.ready.wait(30), "the dashboard did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def threaded() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


def _spec() -> dict[str, Any]:
    sched = Scheduler(store=MemoryStore())
    return create_app(sched, DashboardSettings(auth_token=TOKEN)).openapi()


SPEC = _spec()
OPERATIONS = [
    (method.upper(), path)
    for path, ops in SPEC["paths"].items()
    for method in ops
    if (method.upper(), path) != ("POST", "/api/jobs")
]


# Schemathesis' pytest plugin does not support pytest 9 yet, so each operation's Hypothesis
# strategy is driven directly, one pytest case per operation.
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_api_matches_its_openapi_document(
    method: str, path: str, threaded: ThreadedServer
) -> None:
    schema = schemathesis.openapi.from_dict(threaded.spec)
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        case.call_and_validate(base_url=threaded.url, headers=auth())

    check()
