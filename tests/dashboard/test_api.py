from __future__ import annotations

import asyncio
import json
import re
import sys
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from tests.dashboard import handlers
from tests.dashboard.conftest import TOKEN, XSS_NAME, LiveServer, add_jobs, auth

from agentcron import RunContext, Scheduler
from agentcron.dashboard import DashboardSettings, create_app, views
from agentcron.events import RunProgress, RunSucceeded
from agentcron.models import CONFIG_JOBS_KEY, RunRecord, RunStatus, new_run_id
from agentcron.store.memory import MemoryStore


def _walk(routes: list[Any]) -> list[Any]:
    out = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's lazily included routers
        out.extend(_walk(list(included.routes)) if included is not None else [route])
    return out


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves under /api, plus /metrics and /openapi.json.

    Walked from the app's routing table; the OpenAPI document must not know a route the walk
    missed, so a change in FastAPI's internals fails here instead of silently testing less.
    """
    out = []
    for route in _walk(list(app.routes)):
        path = getattr(route, "path", "")
        if isinstance(route, APIRoute) or path == "/openapi.json":
            methods = sorted((getattr(route, "methods", None) or {"GET"}) - {"HEAD"})
            out.extend((method, path) for method in methods)
    picked = [(m, p) for m, p in out if p.startswith("/api/") or p in ("/metrics", "/openapi.json")]
    documented = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= set(picked)
    return picked


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "backup", path)


async def test_every_api_route_refuses_a_request_without_a_token(
    app: FastAPI, anon: httpx.AsyncClient
) -> None:
    routes = api_routes(app)
    assert len(routes) >= 20  # the DESIGN 2.8 routes are all there
    for method, path in routes:
        response = await anon.request(method, concrete(path))
        assert response.status_code == 401, (method, path)
        assert response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


async def test_every_api_route_refuses_a_wrong_token(app: FastAPI, anon: httpx.AsyncClient) -> None:
    for method, path in api_routes(app):
        response = await anon.request(method, concrete(path), headers=auth("wrong-token-xxxxxxxx"))
        assert response.status_code == 403, (method, path)


async def test_healthz_and_the_login_page_need_no_token(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok"}
    page = await anon.get("/")
    assert page.status_code == 200
    assert "<script" in page.text and "app.js" in page.text
    assert (await anon.get("/static/app.js")).status_code == 200


async def test_responses_carry_a_strict_content_security_policy(anon: httpx.AsyncClient) -> None:
    for path in ("/", "/api/jobs", "/healthz"):
        headers = (await anon.get(path)).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


async def test_the_page_has_no_inline_script_or_style(anon: httpx.AsyncClient) -> None:
    html = (await anon.get("/")).text
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and "style=" not in html and " on" + "click=" not in html


async def test_jobs_are_listed_with_schedule_in_words_and_next_run(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/api/jobs")).json()
    assert page["total"] == 3
    assert [j["id"] for j in page["items"]] == [
        "xss",
        "digest",
        "backup",
    ]  # by name ("<" sorts first)
    backup = next(j for j in page["items"] if j["id"] == "backup")
    assert backup["schedule"] == "0 2 * * *"
    assert backup["description"] == "At 02:00"
    assert backup["timezone"] == "Europe/Berlin"
    assert backup["status"] == "active"
    assert backup["next_run"] is not None
    assert page["tags"] == ["<b>tag</b>", "mail", "maintenance"]


async def test_jobs_can_be_searched_filtered_by_tag_and_paged(client: httpx.AsyncClient) -> None:
    assert [j["id"] for j in (await client.get("/api/jobs?search=NIGHTLY")).json()["items"]] == [
        "backup"
    ]
    assert [j["id"] for j in (await client.get("/api/jobs?tag=mail")).json()["items"]] == ["digest"]
    page = (await client.get("/api/jobs?limit=1&offset=1")).json()
    assert page["total"] == 3 and [j["id"] for j in page["items"]] == ["digest"]


async def test_a_job_page_has_ten_fire_times_stats_and_history(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    await sched.run_now("digest")
    job = (await client.get("/api/jobs/digest")).json()
    assert len(job["next_runs"]) == 10
    times = [datetime.fromisoformat(t) for t in job["next_runs"]]
    assert times == sorted(times) and all(t.hour in (9, 17) for t in times)
    assert job["stats"]["succeeded"] == 1
    assert job["recent_runs"][0]["status"] == "succeeded"
    assert job["last_result"]["status"] == "succeeded"
    assert job["definition"]["trigger"]["expr"] == "0 9,17 * * *"


async def test_a_running_jobs_progress_is_listed_until_its_run_ends(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    reported = asyncio.Event()
    gate = asyncio.Event()

    async def import_mail(ctx: RunContext) -> None:
        ctx.progress(42)
        reported.set()
        await gate.wait()

    sched.update("digest", handler=import_mail)
    run = asyncio.create_task(sched.run_now("digest"))
    try:
        async with asyncio.timeout(10):
            await reported.wait()
        listed = {j["id"]: j for j in (await client.get("/api/jobs")).json()["items"]}
        assert (listed["digest"]["status"], listed["digest"]["progress"]) == ("running", 42.0)
        assert listed["backup"]["progress"] is None  # no run
        assert (await client.get("/api/jobs/digest")).json()["progress"] == 42.0
    finally:
        gate.set()
    async with asyncio.timeout(10):
        assert (await run).status is RunStatus.succeeded
    listed = {j["id"]: j for j in (await client.get("/api/jobs")).json()["items"]}
    assert (listed["digest"]["status"], listed["digest"]["progress"]) == ("active", None)
    assert (await client.get("/api/jobs/digest")).json()["progress"] is None


@pytest.mark.parametrize(
    ("reported", "shown"),
    [(42, 42.0), (0, 0.0), (99.5, 99.5), (100.0, 100.0), (None, None), (True, None),
     (float("nan"), None), (float("inf"), None), (100.5, None), (-1, None), ("42", None)],
)  # fmt: skip
def test_only_a_number_from_0_to_100_is_taken_as_a_jobs_progress(
    reported: object, shown: float | None
) -> None:
    class View:
        progress = reported

    assert views.job_progress(View()) == shown
    assert views.job_progress(object()) is None  # a view without progress


async def test_progress_events_keep_the_cached_job_state_that_other_run_events_drop(
    sched: Scheduler,
) -> None:
    # A run may report every percent: each would otherwise cost the job's next summary a
    # store read, though progress is read from the engine's view, not from the store.
    cache = views.JobStateCache(sched)
    await cache.get("backup", sched.job("backup"))
    now, run_id = sched.clock.now(), new_run_id()
    cache.on_event(
        RunProgress(at=now, job_id="backup", run_id=run_id, scheduled_for=now, progress=50.0)
    )
    assert len(cache) == 1
    cache.on_event(RunSucceeded(at=now, job_id="backup", run_id=run_id, scheduled_for=now))
    assert len(cache) == 0


async def test_unknown_ids_are_404_with_a_json_message(client: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/api/jobs/nope"), ("PATCH", "/api/jobs/nope"), ("DELETE", "/api/jobs/nope"),
        ("POST", "/api/jobs/nope/run"), ("POST", "/api/jobs/nope/pause"),
        ("POST", "/api/jobs/nope/resume"), ("GET", "/api/jobs/nope/runs"),
        ("GET", "/api/queues/nope"), ("POST", "/api/queues/nope/pause"), ("GET", "/api/nothing"),
    ]:  # fmt: skip
        kwargs = {"json": {}} if method == "PATCH" else {}
        response = await client.request(method, path, **kwargs)
        assert response.status_code == 404, (method, path)
        assert "nope" in response.json()["detail"] or path == "/api/nothing"


async def test_bad_input_is_422_never_500(client: httpx.AsyncClient) -> None:
    cases = [
        ("GET", "/api/jobs?limit=0", None), ("GET", "/api/jobs?limit=abc", None),
        ("GET", "/api/runs?status=exploded", None), ("GET", "/api/runs?since=yesterday", None),
        ("GET", "/api/runs?since=2026-01-01T00:00:00", None),
        # Valid ISO times outside years 1-9999 once in UTC (they were 500s):
        ("GET", "/api/runs?since=0001-01-01T00:00:00%2B01:00", None),
        ("GET", "/api/runs?until=9999-12-31T23:59:59-01:00", None),
        ("POST", "/api/jobs", {"id": "x"}), ("POST", "/api/jobs", {"id": "bad/id", "trigger": "* * * * *", "callable": "a:b"}),
        ("POST", "/api/jobs", {"id": "new", "trigger": "61 * * * *", "callable": "a:b"}),
        ("POST", "/api/jobs", {"id": "new", "trigger": "* * * * *"}),
        ("PATCH", "/api/jobs/backup", {"trigger": "not cron"}),
        ("POST", "/api/jobs", {"id": "never", "trigger": "0 0 30 2 *", "callable": "tests.dashboard.handlers:ok"}),
        ("PATCH", "/api/jobs/backup", {"trigger": "0 0 31 4 *"}),
        # Years all past: accepted (201, next run null) while /api/cron/validate said no.
        ("POST", "/api/jobs", {"id": "past", "trigger": "0 0 0 1 1 ? 2020", "callable": "tests.dashboard.handlers:ok"}),
        ("PATCH", "/api/jobs/backup", {"trigger": "* * * * * * 1999"}),
        ("PATCH", "/api/jobs/backup", {"name": None}),
        ("PATCH", "/api/jobs/backup", {"colour": "red"}),
        ("POST", "/api/queues/emails/clean", {"state": "everything"}),
        ("POST", "/api/cron/validate", {"expression": 5}),
    ]  # fmt: skip
    for method, path, body in cases:
        response = await client.request(method, path, json=body)
        assert response.status_code == 422, (method, path, body, response.text)
        assert response.json()["detail"]
    broken = await client.post(
        "/api/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    for infinite in (b'{"grace": Infinity}', b'{"grace": NaN}', b'{"grace": 1e400}'):
        response = await client.post(
            "/api/queues/emails/clean",
            content=infinite,
            headers={"content-type": "application/json"},
        )  # an overflow in the queue's SQL, a 500, before the schema refused them
        assert response.status_code == 422, (infinite, response.text)
        assert "finite" in response.text


async def test_creating_an_existing_id_is_a_409_conflict(client: httpx.AsyncClient) -> None:
    body = {"id": "backup", "trigger": "* * * * *", "callable": "tests.dashboard.handlers:ok"}
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 409
    assert "backup" in response.json()["detail"]


async def test_a_job_the_config_file_defines_is_not_changed_or_removed_here(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    # Both answered 200 and the next reload of agentcron.toml undid them without a word.
    await sched.store.set_state(CONFIG_JOBS_KEY, json.dumps(["backup"]))
    for response in (
        await client.patch("/api/jobs/backup", json={"name": "renamed"}),
        await client.delete("/api/jobs/backup"),
    ):
        assert response.status_code == 409
        assert "defined in agentcron.toml" in response.json()["detail"]
    assert (await client.post("/api/jobs/backup/pause")).status_code == 200
    assert (await client.get("/api/jobs/backup")).json()["name"] != "renamed"
    assert (await client.patch("/api/jobs/digest", json={"name": "ok"})).status_code == 200


async def test_jobs_can_be_created_changed_and_removed(client: httpx.AsyncClient) -> None:
    body = {"id": "new-job", "name": "New", "trigger": "*/10 * * * *", "callable": "tests.dashboard.handlers:ok",
            "tags": ["t"]}  # fmt: skip
    created = await client.post("/api/jobs", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["description"] == "Every 10 minutes"
    patched = await client.patch(
        "/api/jobs/new-job", json={"trigger": "0 * * * *", "name": "Hourly"}
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Hourly" and patched.json()["schedule"] == "0 * * * *"
    assert (await client.delete("/api/jobs/new-job")).json()["ok"] is True
    assert (await client.get("/api/jobs/new-job")).status_code == 404


async def test_pause_keeps_its_note_and_resume_clears_it(client: httpx.AsyncClient) -> None:
    paused = (await client.post("/api/jobs/digest/pause", json={"note": "travelling"})).json()
    assert paused["status"] == "paused" and paused["pause_note"] == "travelling"
    assert paused["next_run"] is None
    assert (await client.get("/api/jobs/digest")).json()["next_runs"] == []
    resumed = (await client.post("/api/jobs/digest/resume")).json()
    assert resumed["status"] == "active" and resumed["pause_note"] is None
    # pausing without a body works too
    assert (await client.post("/api/jobs/digest/pause")).json()["paused"] is True


async def test_run_now_can_wait_for_the_finished_run(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/jobs/backup/run?wait=true")
    assert response.status_code == 200
    run = response.json()["run"]
    assert run["status"] == "succeeded" and run["job_id"] == "backup"
    assert run["node_id"] == "test-node" and run["duration"] is not None


async def test_run_now_on_a_stopped_scheduler_is_a_409() -> None:
    stopped = Scheduler(store=MemoryStore())
    add_jobs(stopped)
    app = create_app(stopped, DashboardSettings(auth_token=TOKEN))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=auth()) as c:
        for path in ("/api/jobs/backup/run", "/api/jobs/backup/run?wait=true"):
            response = await c.post(path)
            assert response.status_code == 409
            assert "not running" in response.json()["detail"]


async def _seed_runs(sched: Scheduler) -> datetime:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = [RunStatus.succeeded, RunStatus.failed, RunStatus.skipped]
    for i in range(30):
        at = base + timedelta(minutes=i)
        await sched.store.record_run(RunRecord(
            run_id=new_run_id(), job_id="backup" if i % 2 else "digest", scheduled_for=at,
            status=statuses[i % 3], started_at=at, finished_at=at + timedelta(seconds=i),
            skip_reason="overlap" if statuses[i % 3] is RunStatus.skipped else None,
        ))  # fmt: skip
    return base


async def test_runs_filter_by_job_status_and_time_range_with_pagination(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    base = await _seed_runs(sched)
    everything = (await client.get("/api/runs?limit=100&count=true")).json()
    assert everything["total"] == 30 and everything["has_more"] is False
    stamps = [r["scheduled_for"] for r in everything["items"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    backup = (await client.get("/api/runs", params={"job": "backup", "count": "true"})).json()
    assert backup["total"] == 15 and {r["job_id"] for r in backup["items"]} == {"backup"}
    failed = (
        await client.get(
            "/api/runs", params=[("status", "failed"), ("status", "skipped"), ("count", "true")]
        )
    ).json()
    assert failed["total"] == 20
    since = (base + timedelta(minutes=10)).isoformat()
    until = (base + timedelta(minutes=20)).isoformat()
    window = (
        await client.get("/api/runs", params={"since": since, "until": until, "count": "1"})
    ).json()
    assert window["total"] == 10
    page2 = (await client.get("/api/runs?limit=7&offset=7")).json()
    assert [r["run_id"] for r in page2["items"]] == [r["run_id"] for r in everything["items"][7:14]]
    assert page2["total"] is None and page2["has_more"] is True  # counting is on request
    last = (await client.get("/api/runs?limit=7&offset=28")).json()
    assert len(last["items"]) == 2 and last["has_more"] is False
    skipped = (
        await client.get("/api/jobs/digest/runs", params={"status": "skipped", "count": "true"})
    ).json()
    assert all(r["skip_reason"] == "overlap" for r in skipped["items"]) and skipped["total"] == 5


async def test_health_calls_an_idle_system_healthy_and_failing_jobs_degraded(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    health = (await client.get("/api/health")).json()
    assert health["status"] == "healthy" and health["running"] == 0 and health["reasons"] == []

    sched.update("digest", handler=handlers.fail)
    await client.post("/api/jobs/digest/run?wait=true")
    health = (await client.get("/api/health")).json()
    assert health["status"] == "degraded" and health["failing"] == 1
    assert "failing" in health["reasons"][0]
    job = (await client.get("/api/jobs/digest")).json()
    assert job["status"] == "failing" and "disk full" in job["last_result"]["error"]


async def test_nodes_are_judged_by_their_heartbeat_age(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    from agentcron.models import NodeHeartbeat

    now = sched.clock.now()
    await sched.store.write_heartbeat(
        NodeHeartbeat(node_id="a", sequence=5, sent_at=now, interval_s=30)
    )
    await sched.store.write_heartbeat(
        NodeHeartbeat(node_id="b", sequence=1, sent_at=now - timedelta(minutes=10), interval_s=30)
    )
    nodes = (await client.get("/api/nodes")).json()
    assert {n["node_id"]: n["status"] for n in nodes["items"]} == {"a": "online", "b": "offline"}
    assert nodes["online"] == 1
    health = (await client.get("/api/health")).json()
    assert health["status"] == "degraded" and health["nodes_online"] == 1


async def test_queues_show_counts_and_can_be_paused_resumed_and_cleaned(
    client: httpx.AsyncClient,
) -> None:
    queues = (await client.get("/api/queues")).json()
    assert queues["available"] is True
    counts = queues["items"][0]["counts"]
    assert (counts["waiting"], counts["delayed"], counts["completed"]) == (3, 2, 4)
    assert (await client.post("/api/queues/emails/pause")).json()["paused"] is True
    assert (await client.post("/api/queues/emails/resume")).json()["paused"] is False
    cleaned = (
        await client.post("/api/queues/emails/clean", json={"state": "completed", "limit": 3})
    ).json()
    assert cleaned == {"queue": "emails", "state": "completed", "removed": 3}
    assert (await client.get("/api/queues/emails")).json()["counts"]["completed"] == 1


async def test_the_cron_playground_reports_errors_warnings_and_next_runs(
    client: httpx.AsyncClient,
) -> None:
    good = (await client.post("/api/cron/validate", json={"expression": "0 9 * * MON"})).json()
    assert good["valid"] and good["description"] and len(good["next_runs"]) == 10
    bad = (await client.post("/api/cron/validate", json={"expression": "61 * * * *"})).json()
    assert not bad["valid"] and "minute" in bad["error"]
    never = (await client.post("/api/cron/validate", json={"expression": "0 0 30 2 *"})).json()
    assert not never["valid"] and never["error"] == "never fires"
    fast = (await client.post("/api/cron/validate", json={"expression": "* * * * * *"})).json()
    assert fast["valid"] and fast["warnings"]
    zone = (
        await client.post(
            "/api/cron/validate", json={"expression": "* * * * *", "timezone": "Mars/Base"}
        )
    ).json()
    assert not zone["valid"] and "Mars/Base" in zone["error"]


async def test_the_timeline_has_past_runs_and_planned_fires_in_buckets(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    await sched.run_now("backup")
    await sched.run_now("backup")
    data = (await client.get("/api/timeline?hours=24")).json()
    assert data["bucket_seconds"] == 15 * 60
    assert [r["job_id"] for r in data["rows"]] == ["backup", "xss", "digest"]  # ran first
    runs = [e for e in data["entries"] if e["kind"] == "run"]
    assert runs == [runs[0]] and runs[0]["count"] == 2 and runs[0]["status"] == "succeeded"
    planned_xss = [e for e in data["entries"] if e["job_id"] == "xss" and e["kind"] == "planned"]
    assert 95 <= len(planned_xss) <= 97  # one per 15-minute bucket, not one per 5 minutes
    assert all(e["name"] == XSS_NAME for e in planned_xss)
    planned_digest = [
        e for e in data["entries"] if e["job_id"] == "digest" and e["kind"] == "planned"
    ]
    assert {datetime.fromisoformat(e["at"]).hour for e in planned_digest} <= {9, 17}


async def test_a_paused_job_has_no_planned_fires_on_the_timeline(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/jobs/xss/pause")
    data = (await client.get("/api/timeline?jobs=1")).json()
    assert data["total_jobs"] == 3 and len(data["rows"]) == 1
    assert not [e for e in data["entries"] if e["job_id"] == "xss"]


async def test_openapi_lists_every_design_route(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ["/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/run",
                 "/api/jobs/{job_id}/pause", "/api/jobs/{job_id}/resume", "/api/jobs/{job_id}/runs",
                 "/api/runs", "/api/health", "/api/nodes", "/api/queues", "/api/queues/{name}",
                 "/api/queues/{name}/pause", "/api/queues/{name}/resume", "/api/queues/{name}/clean",
                 "/api/cron/validate"]:  # fmt: skip
        assert path in paths, path
    assert set(paths["/api/jobs/{job_id}"]) == {"get", "patch", "delete"}


@pytest.mark.parametrize("path", ["/api/jobs/%3Cscript%3E", "/api/jobs/a%2Fb", "/api/jobs/..%2F.."])
async def test_odd_ids_are_plain_404s(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


def test_the_timeline_costs_one_entry_per_bucket_even_for_an_every_second_job() -> None:
    from agentcron.dashboard.timeline import BUCKETS_PER_SIDE, TimelineJob, build_timeline

    now = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # Europe/Berlin springs forward at 01:00 UTC
    jobs = [
        TimelineJob("fast", "Every second", "* * * * * *", "UTC", True),
        TimelineJob("berlin", "Berlin 02:30", "30 2 * * *", "Europe/Berlin", True),
        TimelineJob("paused", "Paused", "* * * * *", "UTC", False),
    ]
    data = build_timeline(jobs, [], now, hours=24, max_rows=10)
    fast = [e for e in data.entries if e.job_id == "fast"]
    assert BUCKETS_PER_SIDE <= len(fast) <= BUCKETS_PER_SIDE + 1  # the end instant opens one more
    berlin = [e.at for e in data.entries if e.job_id == "berlin"]
    # 02:30 does not exist on 2026-03-29 in Berlin; Vixie/Debian cron runs it at 03:00 CEST.
    assert [t.isoformat() for t in berlin] == [
        "2026-03-29T01:00:00+00:00",
        "2026-03-30T00:30:00+00:00",
    ]
    assert not [e for e in data.entries if e.job_id == "paused"]
    assert [r.job_id for r in data.rows] == ["berlin", "fast", "paused"]


async def test_command_and_http_jobs_can_be_added_and_a_bad_handler_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    command = {
        "id": "echo",
        "trigger": "0 0 1 1 *",
        "command": [sys.executable, "-c", "print('hi there')"],
    }
    assert (await client.post("/api/jobs", json=command)).status_code == 201
    run = (await client.post("/api/jobs/echo/run?wait=true")).json()["run"]
    assert run["status"] == "succeeded" and "hi there" in (run["output_tail"] or "")
    http = {
        "id": "hook",
        "trigger": "0 0 1 1 *",
        "http": {"url": "http://127.0.0.1:9/x", "method": "GET"},
    }
    assert (await client.post("/api/jobs", json=http)).status_code == 201
    for bad in (
        {"id": "b1", "trigger": "0 0 1 1 *", "http": {"nope": 1}},
        {"id": "b2", "trigger": "0 0 1 1 *", "callable": "no_colon"},
        {"id": "b3", "trigger": "0 0 1 1 *", "command": ["x"], "callable": "a:b"},
        {"id": "b4", "trigger": "0 0 1 1 *", "command": []},
    ):
        response = await client.post("/api/jobs", json=bad)
        assert response.status_code == 422, (bad, response.text)


OK_JOB = {"trigger": "0 0 1 1 *", "callable": "tests.dashboard.handlers:ok"}


async def test_a_request_body_over_the_limit_is_a_413_before_it_is_parsed(
    client: httpx.AsyncClient,
) -> None:
    big = {"id": "big", **OK_JOB, "name": "x" * (1024 * 1024)}  # a 422 once parsed
    response = await client.post("/api/jobs", json=big)
    assert response.status_code == 413, response.text
    assert "too large" in response.json()["detail"]

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield b'{"id": "big", "name": "'
        for _ in range(40):
            yield b"x" * 32_768
        yield b'"}'

    response = await client.post(
        "/api/jobs", content=streamed(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert (await client.get("/api/jobs/big")).status_code == 404
    small = await client.post("/api/jobs", json={"id": "small", **OK_JOB})
    assert small.status_code == 201, small.text


async def test_a_streamed_body_over_the_limit_is_cut_off_without_waiting_for_its_end(
    live: LiveServer,
) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /api/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n"
        )
        chunk = b"x" * 65_536
        for _ in range(20):  # 1.25 MiB, and the body never ends
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        async with asyncio.timeout(10):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 413"), head
            length = int(re.search(rb"content-length: (\d+)", head.lower())[1])  # type: ignore[index]
            assert b"too large" in await reader.readexactly(length)
    finally:
        writer.close()


async def test_tags_and_commands_have_size_limits_and_tags_cannot_be_empty(
    client: httpx.AsyncClient,
) -> None:
    command = {"id": "limited", "trigger": "0 0 1 1 *", "command": ["echo", "x" * 140_000]}
    for body in (
        {"id": "limited", **OK_JOB, "tags": ["t"] * 51},
        {"id": "limited", **OK_JOB, "tags": [""]},
        {"id": "limited", **OK_JOB, "tags": ["x" * 101]},
        {"id": "limited", **OK_JOB, "tags": ["a\nb"]},
        command,
    ):
        response = await client.post("/api/jobs", json=body)
        assert response.status_code == 422, (body["id"], response.text)
        assert response.json()["detail"][0]["loc"][1] in ("tags", "command")
    for tags in (["t"] * 51, [""]):
        response = await client.patch("/api/jobs/backup", json={"tags": tags})
        assert response.status_code == 422, response.text
    ok = {"id": "tagged", **OK_JOB, "tags": [f"tag{i}" for i in range(50)]}
    assert (await client.post("/api/jobs", json=ok)).status_code == 201
    assert (await client.get("/api/jobs/limited")).status_code == 404


async def test_non_finite_numbers_are_refused_not_stored_as_no_timeout(
    client: httpx.AsyncClient,
) -> None:
    json_type = {"content-type": "application/json"}
    for number in (b"Infinity", b"-Infinity", b"NaN", b"1e400"):
        body = b'{"id": "inf", "trigger": "0 0 1 1 *", "callable": "tests.dashboard.handlers:ok"'
        response = await client.post(
            "/api/jobs", content=body + b', "timeout": ' + number + b"}", headers=json_type
        )
        assert response.status_code == 422, (number, response.text)
        assert "finite" in response.text
        response = await client.patch(
            "/api/jobs/backup", content=b'{"timeout": ' + number + b"}", headers=json_type
        )
        assert response.status_code == 422, (number, response.text)
        http = b'{"id": "inf", "trigger": "0 0 1 1 *", "http": {"url": "http://127.0.0.1:9/"'
        response = await client.post(
            "/api/jobs", content=http + b', "json": {"n": [' + number + b"]}}}", headers=json_type
        )
        assert response.status_code == 422, (number, response.text)
    assert (await client.get("/api/jobs/inf")).status_code == 404


async def test_http_handler_mistakes_name_the_field_and_header_line_breaks_are_refused(
    client: httpx.AsyncClient,
) -> None:
    url = "http://127.0.0.1:9/x"
    cases = [
        ({"method": "GET"}, ["body", "http", "url"]),
        ({"url": url, "timeout": 5}, ["body", "http", "timeout"]),
        ({"url": url, "headers": {"X-A\r\nX-B": "1"}}, ["body", "http", "headers"]),
        ({"url": url, "headers": {"X-A": "1\r\nX-B: 2"}}, ["body", "http", "headers", "X-A"]),
        ({"url": url, "headers": {"X A": "1"}}, ["body", "http", "headers"]),
    ]
    for http, loc in cases:
        body = {"id": "hook", "trigger": "0 0 1 1 *", "http": http}
        response = await client.post("/api/jobs", json=body)
        assert response.status_code == 422, (http, response.text)
        assert "__init__" not in response.text and "keyword argument" not in response.text
        assert response.json()["detail"][0]["loc"][: len(loc)] == loc, response.text
    good = {"url": url, "method": "PUT", "headers": {"X-Token": "abc"}, "timeout_s": 5}
    created = await client.post(
        "/api/jobs", json={"id": "hook", "trigger": "0 0 1 1 *", "http": good}
    )
    assert created.status_code == 201, created.text
    handler = created.json()["definition"]["handler"]
    assert (handler["method"], handler["headers"], handler["timeout_s"]) == (
        "PUT",
        {"X-Token": "abc"},
        5,
    )


@pytest.mark.parametrize("job_id", ["my job ü", "..", ".", "50% off?", "a#b", " spaced "])
async def test_any_id_the_readme_allows_can_be_created_and_addressed(
    client: httpx.AsyncClient, sched: Scheduler, job_id: str
) -> None:
    created = await client.post("/api/jobs", json={"id": job_id, **OK_JOB})
    assert created.status_code == 201, created.text
    assert created.json()["id"] == job_id
    # Browsers collapse a "." or ".." segment even as %2E%2E, so the page uses ?id=.
    query = {"id": job_id}
    paused = await client.post("/api/job/pause", params=query, json={"note": "n"})
    assert paused.status_code == 200 and paused.json()["id"] == job_id, paused.text
    assert sched.job(job_id).paused
    assert (await client.post("/api/job/resume", params=query)).json()["paused"] is False
    assert (await client.get("/api/job", params=query)).json()["id"] == job_id
    assert (await client.get("/api/job/runs", params=query)).status_code == 200
    quoted = urllib.parse.quote(job_id, safe="").replace(".", "%2E")
    assert (await client.get(f"/api/jobs/{quoted}")).json()["id"] == job_id
    assert (await client.delete("/api/job", params=query)).json()["ok"] is True


async def test_ids_the_readme_forbids_are_refused_with_the_reason(
    client: httpx.AsyncClient,
) -> None:
    for job_id, reason in (("a/b", '"/"'), ("a\nb", "control"), ("x" * 201, "200"), ("", "1")):
        response = await client.post("/api/jobs", json={"id": job_id, **OK_JOB})
        assert response.status_code == 422, (job_id, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", "id"]
        assert reason in response.json()["detail"][0]["msg"]
    assert (await client.get("/api/job")).status_code == 422
    assert (await client.get("/api/job", params={"id": "a/b"})).status_code == 404
    assert (await client.get("/api/job", params={"id": "nope"})).status_code == 404


def _add_unconfigured_loop(sched: Scheduler) -> str:
    """The agent-loops preset's first integration loop, as the daemon adds it without a
    handler configured: disabled, with the reason "no handler configured"."""
    from agentcron.config import load_settings
    from agentcron.system import preset_entries

    settings = load_settings(environ={}, env_file=None)
    for job_id, trigger, handler, options in preset_entries(settings, {}):
        if options.get("enabled") is False:
            sched.add_job(job_id, trigger=trigger, handler=handler, **options)
            return job_id
    raise AssertionError("the preset has no integration loop")


async def test_a_disabled_job_says_why_in_the_list_and_its_page(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    loop = _add_unconfigured_loop(sched)
    listed = {j["id"]: j for j in (await client.get("/api/jobs")).json()["items"]}
    assert listed[loop]["status"] == "disabled"
    assert listed[loop]["disabled_reason"] == "no handler configured"
    assert listed["backup"]["disabled_reason"] is None
    detail = (await client.get(f"/api/jobs/{loop}")).json()
    assert detail["disabled_reason"] == "no handler configured"
