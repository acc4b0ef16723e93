"""Hostile and malformed HTTP input: always a 4xx JSON error that says what is wrong.

Each case here was answered otherwise before (a 400 without a reason, a 307 redirect, or
a 2xx that accepted and stored the bad value).
"""

from __future__ import annotations

import httpx
import pytest
from tests.dashboard.conftest import TOKEN

from agentcron import Scheduler

JSON = {"content-type": "application/json"}
OK_JOB = {"trigger": "0 0 1 1 *", "callable": "tests.dashboard.handlers:ok"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "nested too deeply"),
        (b'{"expression": "\xff"}', "not valid UTF-8"),
    ],
    ids=["deep-array", "deep-object", "invalid-utf8"],
)
async def test_a_body_nested_too_deeply_or_not_utf8_is_a_422_that_says_so(
    client: httpx.AsyncClient, body: bytes, reason: str
) -> None:
    for path in ("/api/cron/validate", "/api/jobs", "/api/jobs/backup/pause"):
        response = await client.post(path, content=body, headers=JSON)
        assert response.status_code == 422, (path, response.text)  # was 400 "error parsing"
        assert reason in response.json()["detail"]


async def test_values_of_the_wrong_json_type_are_refused_not_converted(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    for path, body, field in [
        ("/api/cron/validate", {"expression": "* * * * *", "count": "5"}, "count"),
        ("/api/cron/validate", {"expression": "* * * * *", "count": True}, "count"),
        ("/api/cron/validate", {"expression": "* * * * *", "count": 2.5}, "count"),
        ("/api/jobs", {"id": "typed", **OK_JOB, "enabled": "yes"}, "enabled"),
        ("/api/jobs", {"id": "typed", **OK_JOB, "enabled": 0}, "enabled"),
        ("/api/jobs", {"id": "typed", **OK_JOB, "timeout": "30"}, "timeout"),
        ("/api/queues/emails/clean", {"limit": "10"}, "limit"),
        ("/api/queues/emails/clean", {"grace": False}, "grace"),
    ]:
        response = await client.post(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", field]
    assert (await client.get("/api/jobs/typed")).status_code == 404
    patched = await client.patch("/api/jobs/backup", json={"enabled": "false"})
    assert patched.status_code == 422, patched.text  # "false" was read as True
    assert sched.job("backup").job.enabled is True
    # One JSON number type: 3.0 is the integer 3; numbers stay numbers for float fields.
    whole = await client.post("/api/cron/validate", json={"expression": "@daily", "count": 3.0})
    assert whole.status_code == 200 and len(whole.json()["next_runs"]) == 3
    created = await client.post("/api/jobs", json={"id": "typed", **OK_JOB, "timeout": 30})
    assert created.status_code == 201, created.text


async def test_an_http_url_with_a_line_break_or_a_space_is_refused(
    client: httpx.AsyncClient,
) -> None:
    for url in (
        "http://127.0.0.1:9/\r\nX-Injected: 1",
        "http://127.0.0.1:9/a b",
        "http://127.0.0.1:9/\x00",
    ):
        body = {"id": "hook", "trigger": "0 0 1 1 *", "http": {"url": url}}
        response = await client.post("/api/jobs", json=body)
        assert response.status_code == 422, (url, response.text)  # was 201
        error = response.json()["detail"][0]
        assert error["loc"] == ["body", "http", "url"] and "control characters" in error["msg"]
    assert (await client.get("/api/jobs/hook")).status_code == 404


async def test_a_job_name_with_control_characters_is_refused_like_a_tag(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    for name in ("two\nlines", "nul\x00", "bell\x07", "c1\x9b[31m"):
        response = await client.post("/api/jobs", json={"id": "named", **OK_JOB, "name": name})
        assert response.status_code == 422, (name, response.text)  # was 201
        assert response.json()["detail"][0]["loc"] == ["body", "name"]
        patched = await client.patch("/api/jobs/backup", json={"name": name})
        assert patched.status_code == 422, (name, patched.text)  # was 200
    assert sched.job("backup").job.name == "Nightly backup"
    html = "<script>alert(1)</script> ü ‮"  # printable: allowed, and escaped by the page
    assert (await client.patch("/api/jobs/backup", json={"name": html})).json()["name"] == html


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_the_address_of_the_id_slash_is_a_json_404_not_a_redirect_to_the_list(
    client: httpx.AsyncClient, method: str
) -> None:
    for path in ("/api/jobs/%2F", "/api/jobs/", "/api/queues/%2F"):
        response = await client.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (path, response.status_code)  # was 307
        assert response.json()["detail"]
    assert (await client.get("/api/jobs")).json()["total"] == 3


async def test_a_lone_surrogate_or_non_ascii_token_is_refused_without_an_error(
    anon: httpx.AsyncClient,
) -> None:
    for raw in ("Bearer t\xe9st".encode("latin-1"), "Bearer ü".encode(), b"Bearer \xff\xfe"):
        response = await anon.get("/api/jobs", headers={"authorization": raw})
        assert response.status_code == 403 and response.json()["detail"]
    lower = await anon.get("/api/jobs", headers={"authorization": f"bearer   {TOKEN}  "})
    assert lower.status_code == 200  # the scheme is case-insensitive (RFC 7235)


async def test_broken_json_says_what_is_wrong_and_where(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/cron/validate", content=b'{"expression": }', headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == (
        "JSON decode error: Expecting value (at character 15)"
    )  # was "JSON decode error"
    huge = b'{"expression": "* * * * *", "count": 1' + b"0" * 5_000 + b"}"
    response = await client.post("/api/cron/validate", content=huge, headers=JSON)
    assert response.status_code == 422, response.text  # was 400
    assert "4300 digits" in response.json()["detail"]


async def test_the_json_an_http_job_sends_is_capped_in_depth_so_the_job_stays_readable(
    client: httpx.AsyncClient,
) -> None:
    def job(depth: int) -> dict[str, object]:
        nested: object = 1
        for _ in range(depth):
            nested = [nested]
        url = "http://127.0.0.1:9/"
        return {"id": f"deep{depth}", "trigger": "0 0 1 1 *", "http": {"url": url, "json": nested}}

    response = await client.post("/api/jobs", json=job(900))
    assert response.status_code == 422, response.text  # was a 500, with the job stored anyway
    assert response.json()["detail"][0]["loc"] == ["body", "http", "json"]
    assert "nested too deeply" in response.json()["detail"][0]["msg"]
    assert (await client.get("/api/jobs/deep900")).status_code == 404  # was a 500 for good
    assert (await client.get("/api/jobs")).json()["total"] == 3
    assert (await client.post("/api/jobs", json=job(65))).status_code == 422
    assert (await client.post("/api/jobs", json=job(64))).status_code == 201
    assert (await client.get("/api/jobs/deep64")).status_code == 200
