"""`agentcron run --store redis://...` as real processes: shared jobs, shared events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from agentcron.models import RunQuery, RunStatus
from agentcron.store.redis import RedisStore
from helpers.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SRC = Path(__file__).resolve().parents[2] / "src"
JOBS = """
[[jobs]]
id = "beat"
trigger = "* * * * * *"
command = ["true"]
jitter = "300ms"  # a random claim delay per node: the work spreads over both
"""


def start_node(
    tmp_path: Path, name: str, url: str, *, stderr: int = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    home = tmp_path / name
    home.mkdir()
    (home / "agentcron.toml").write_text(JOBS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "REDIS_"))}
    env |= {"PYTHONPATH": str(SRC), "SCHEDULER_NODE_ID": name}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentcron",
            "run",
            "--store",
            url,
            "--no-dashboard",
            "--no-log-file",
            "--data-dir",
            str(home / "data"),
        ],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )


async def test_two_agentcron_run_processes_share_one_schedule_and_one_event_stream(
    server: RedisServer, tmp_path: Path
) -> None:
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("agentcron:events")
        nodes = [start_node(tmp_path, name, server.url) for name in ("alpha", "beta")]
        try:
            finished: list[dict[str, Any]] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len({e["node_id"] for e in finished}) < 2:
                message = pubsub.get_message(timeout=1.0)
                if message is not None:
                    event = json.loads(message["data"])["event"]
                    if event["type"] == "run.succeeded":
                        finished.append(event)
            assert {e["node_id"] for e in finished} == {"alpha", "beta"}, finished
        finally:
            for node in nodes:
                node.send_signal(signal.SIGTERM)
            for node in nodes:
                node.wait(30)
            pubsub.close()
    store = RedisStore(server.url)
    await store.open()
    try:
        runs = await store.list_runs(RunQuery(job_id="beat", limit=1000))
        keys = [r.occurrence_key for r in runs if r.status != RunStatus.skipped]
        assert keys and len(keys) == len(set(keys))  # each second ran once, across both nodes
    finally:
        await store.close()


def test_run_on_a_redis_without_pub_sub_stops_at_start_with_one_line_and_exit_code_2(
    tmp_path: Path,
) -> None:
    # It ran without the other nodes' events, then printed a traceback when stopped.
    server = RedisServer(tmp_path / "redis", extra_args=("--rename-command", "SUBSCRIBE", ""))
    server.start()
    try:
        node = start_node(tmp_path, "alpha", server.url, stderr=subprocess.PIPE)
        _, err = node.communicate(timeout=60)
    finally:
        server.stop()
    lines = err.decode().strip().splitlines()
    assert node.returncode == 2, lines
    assert len(lines) == 1 and "could not subscribe to channel 'agentcron:events'" in lines[0]
