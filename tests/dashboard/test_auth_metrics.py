from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import httpx
import pytest
from tests.dashboard import handlers

from agentcron import RunContext, Scheduler
from agentcron.dashboard import DashboardSettings, create_app, ensure_token
from agentcron.dashboard.auth import TOKEN_FILE, bearer_token, is_loopback, token_matches


def test_a_configured_token_is_used_as_is(tmp_path: Path) -> None:
    token, generated = ensure_token(tmp_path, "  configured-token-123456  ")
    assert (token, generated) == ("configured-token-123456", False)
    assert not (tmp_path / TOKEN_FILE).exists()


def test_a_short_configured_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="too short"):
        ensure_token(tmp_path, "abc")


def test_without_a_token_one_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token, generated = ensure_token(data, None)
    assert generated and len(token) >= 32
    path = data / TOKEN_FILE
    assert path.read_text().strip() == token
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, generated_again = ensure_token(data, "")
    assert (again, generated_again) == (token, False)


def test_tokens_are_compared_exactly() -> None:
    assert token_matches("secret-token", "secret-token")
    assert not token_matches("secret-token", "secret-tokeN")
    assert not token_matches("secret-token", None)
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token("Bearer ") is None


def test_loopback_addresses_are_recognised() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")


def test_an_app_without_a_token_cannot_be_built(sched: Scheduler) -> None:
    with pytest.raises(ValueError, match="auth_token"):
        create_app(sched, DashboardSettings(auth_token=""))


async def test_metrics_count_runs_by_job_and_status_with_durations_and_lateness(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    await sched.run_now("backup")
    await sched.run_now("backup")
    sched.update("digest", handler=handlers.fail)
    await sched.run_now("digest")
    await sched.events.drain()
    await client.get("/api/queues")
    text = (await client.get("/metrics")).text
    assert 'agentcron_runs_total{job_id="backup",status="succeeded"} 2.0' in text
    assert 'agentcron_runs_total{job_id="digest",status="failed"} 1.0' in text
    assert 'agentcron_run_duration_seconds_count{job_id="backup"} 2.0' in text
    assert 'agentcron_run_lateness_seconds_count{job_id="backup"} 2.0' in text
    assert 'agentcron_queue_jobs{queue="emails",state="waiting"} 3.0' in text
    assert "agentcron_dashboard_ws_clients 0.0" in text


async def test_progress_reported_by_a_run_is_not_counted_as_a_run(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    async def import_mail(ctx: RunContext) -> None:
        ctx.progress(50)
        ctx.progress(100)

    sched.update("backup", handler=import_mail)
    await sched.run_now("backup")
    await sched.events.drain()
    text = (await client.get("/metrics")).text
    assert 'agentcron_runs_total{job_id="backup",status="succeeded"} 1.0' in text
    assert 'status="progress"' not in text


async def test_metrics_follow_circuit_and_node_events(
    client: httpx.AsyncClient, sched: Scheduler
) -> None:
    from agentcron.events import CircuitOpened, NodeOffline

    now = sched.clock.now()
    sched.events.publish(CircuitOpened(at=now, circuit="mail", failures=5))
    sched.events.publish(NodeOffline(at=now, node_id="n1", health_score=0))
    await sched.events.drain()
    text = (await client.get("/metrics")).text
    assert 'agentcron_circuit_state{circuit="mail",state="open"} 1.0' in text
    assert 'agentcron_circuit_state{circuit="mail",state="closed"} 0.0' in text
    assert 'agentcron_node_up{node_id="n1"} 0.0' in text


async def test_two_apps_keep_separate_metrics(sched: Scheduler) -> None:
    one = create_app(sched, DashboardSettings(auth_token="x" * 20))
    two = create_app(sched, DashboardSettings(auth_token="y" * 20))
    assert one.state.dashboard.metrics.registry is not two.state.dashboard.metrics.registry


def test_importing_agentcron_does_not_import_fastapi() -> None:
    import subprocess

    code = (
        "import sys, agentcron, agentcron.cli.main; "
        "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
