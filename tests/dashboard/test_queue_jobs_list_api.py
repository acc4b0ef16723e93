"""`GET /api/queues/{name}/jobs` and `GET /api/queues/{name}/jobs/{job_id}`: a queue's jobs
by state, and one job with its full error, on a real SQLite queue (`emails` of conftest: 4
completed, 3 waiting, 2 delayed)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.dashboard.conftest import TOKEN, XSS_NAME

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings, create_app
from agentcron.dashboard.queues import QueueSet
from agentcron.queue import Job, QueueConnectionError, QueueInputError, open_queue

ERROR = "smtp refused <script>alert(1)</script>\nTraceback (most recent call last):\n  line 2"


@contextlib.asynccontextmanager
async def client_for(sched: Scheduler, queues: Any) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(sched, DashboardSettings(auth_token=TOKEN), queues=queues)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=headers
        ) as c:
            yield c


async def add_failed(url: str, sched: Scheduler) -> None:
    """Two dead letters in queue `bounces`: "bounce" (id bad/1: a slash) then XSS_NAME."""
    q = open_queue(url, "bounces", clock=sched.clock)
    try:
        await q.add("bounce", {"to": "x@y"}, job_id="bad/1")
        await q.add(XSS_NAME, {"to": "<b>"}, job_id="bad-2")

        async def handler(job: Job) -> None:
            raise RuntimeError(ERROR)

        await q.worker(handler).run(burst=True)
    finally:
        await q.close()


async def test_waiting_jobs_are_listed_in_the_order_they_will_run(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/queues/emails/jobs")
    assert response.status_code == 200
    page = response.json()
    assert (page["queue"], page["state"], page["limit"], page["offset"]) == ("emails", "waiting",
                                                                              50, 0)  # fmt: skip
    assert page["has_more"] is False
    assert [j["data"] for j in page["items"]] == [{"to": f"user{i}@example.org"} for i in range(3)]
    assert {j["state"] for j in page["items"]} == {"waiting"}
    delayed = (await client.get("/api/queues/emails/jobs?state=delayed")).json()
    assert [j["name"] for j in delayed["items"]] == ["send", "send"]


async def test_pages_say_whether_more_follow(client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/queues/emails/jobs?state=completed&limit=3")).json()
    assert len(first["items"]) == 3 and first["has_more"] is True
    rest = (await client.get("/api/queues/emails/jobs?state=completed&limit=3&offset=3")).json()
    assert len(rest["items"]) == 1 and rest["has_more"] is False
    # Newest first: the pages do not overlap and cover all four.
    ids = [j["id"] for j in first["items"] + rest["items"]]
    assert len(set(ids)) == 4 and ids == sorted(ids, key=int, reverse=True)


async def test_failed_jobs_show_their_error_and_one_job_shows_everything(
    sched: Scheduler, queue_url: str
) -> None:
    await add_failed(queue_url, sched)
    queues = QueueSet(queue_url, ["bounces"], scheduler=sched)
    async with client_for(sched, queues) as client:
        await _check_failed(client)
    await queues.close()


async def _check_failed(client: httpx.AsyncClient) -> None:
    page = (await client.get("/api/queues/bounces/jobs?state=failed")).json()
    assert [j["id"] for j in page["items"]] == ["bad-2", "bad/1"]  # newest first
    assert page["items"][0]["name"] == XSS_NAME  # data, exactly: the page escapes it
    assert page["items"][0]["error"] == f"RuntimeError: {ERROR}"
    job = (await client.get("/api/queues/bounces/jobs/bad%2F1")).json()
    assert job == {
        "id": "bad/1",
        "name": "bounce",
        "state": "failed",
        "priority": 0,
        "attempts": 1,
        "attempts_made": 1,
        "progress": 0.0,
        "data": {"to": "x@y"},
        "result": None,
        "error": f"RuntimeError: {ERROR}",
        "created_at": job["created_at"],
        "finished_at": job["finished_at"],
    }
    assert job["created_at"] and job["finished_at"]
    assert (await client.get("/api/queues/bounces/jobs/bad/1")).json()["id"] == "bad/1"


async def test_unknown_queues_and_jobs_are_404(client: httpx.AsyncClient) -> None:
    for path in ["/api/queues/nope/jobs", "/api/queues/nope/jobs/1",
                 "/api/queues/emails/jobs/nope", "/api/queues/emails/jobs/999999",
                 "/api/queues/emails/jobs/99999999999999999999999"]:  # fmt: skip
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "nope" in response.json()["detail"] or "9999" in response.json()["detail"]


async def test_bad_input_is_422_never_500(client: httpx.AsyncClient) -> None:
    for query in ["state=paused", "state=", "limit=0", "limit=501", "limit=x", "offset=-1",
                  "offset=99999999999"]:  # fmt: skip
        response = await client.get(f"/api/queues/emails/jobs?{query}")
        assert response.status_code == 422, (query, response.text)
        assert response.json()["detail"]
    long_id = "x" * 301
    assert (await client.get(f"/api/queues/emails/jobs/{long_id}")).status_code == 422


async def test_the_routes_need_the_token(anon: httpx.AsyncClient) -> None:
    for path in ["/api/queues/emails/jobs", "/api/queues/emails/jobs/1"]:
        assert (await anon.get(path)).status_code == 401
        wrong = await anon.get(path, headers={"Authorization": "Bearer wrong"})
        assert wrong.status_code == 403


async def test_openapi_lists_the_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "get" in paths["/api/queues/{name}/jobs"]
    assert "get" in paths["/api/queues/{name}/jobs/{job_id}"]


class _BrokenQueue:
    """A queue whose backend fails the way `agentcron.queue` backends do."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    async def counts(self) -> Mapping[str, int]:
        return {}

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def clean(self, grace: float, limit: int, state: str) -> Any:
        return []

    async def jobs(self, state: str, *, offset: int = 0, limit: int = 50) -> list[Any]:
        assert self.error is not None
        raise self.error

    async def get(self, job_id: str) -> Any:
        assert self.error is not None
        raise self.error


class _Source:
    def __init__(self, queues: dict[str, Any]) -> None:
        self.queues = queues

    def names(self) -> Sequence[str]:
        return sorted(self.queues)

    def get(self, name: str) -> Any:
        return self.queues.get(name)


@pytest.mark.parametrize(
    ("queue", "status"),
    [
        (_BrokenQueue(QueueConnectionError("cannot reach redis at redis://h:6379/0")), 503),
        (_BrokenQueue(QueueInputError("job id must be valid UTF-8 text")), 422),
    ],
)
async def test_queue_errors_are_answered_not_500(sched: Scheduler, queue: Any, status: int) -> None:
    async with client_for(sched, _Source({"q": queue})) as c:
        for path in ["/api/queues/q/jobs?state=failed", "/api/queues/q/jobs/1"]:
            response = await c.get(path)
            assert response.status_code == status, (path, response.text)
            assert response.json()["detail"]
