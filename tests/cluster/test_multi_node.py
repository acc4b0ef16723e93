"""Several real scheduler processes on one real Redis: exactly once, failover, outages, skew."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
from cluster_support import Cluster, second_boundary

from agentcron.models import RunQuery, RunStatus
from agentcron.store.redis import RedisStore
from helpers.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def tick_key(at: object) -> str:
    from agentcron.models import occurrence_key

    return occurrence_key("tick", at)  # type: ignore[arg-type]


async def test_three_nodes_run_each_of_60_per_second_occurrences_exactly_once(
    cluster: Cluster, server: RedisServer
) -> None:
    start = second_boundary(10)  # time for three Python processes to start on a busy machine
    end = start + timedelta(seconds=59)
    for node_id in ("n1", "n2", "n3"):
        cluster.start(node_id, "tick", start, end)
    cluster.wait_ready()
    expected = {tick_key(start + timedelta(seconds=i)) for i in range(60)}
    cluster.wait_for(
        lambda: {e["key"] for e in cluster.entries()} >= expected, 100, "60 occurrences"
    )
    cluster.stop()
    runs = Counter(e["key"] for e in cluster.entries())
    assert set(runs) == expected
    assert all(count == 1 for count in runs.values()), runs.most_common(3)
    by_node = Counter(e["node"] for e in cluster.entries())
    assert len(by_node) >= 2, by_node  # claims are raced, so the work spreads
    store = RedisStore(server.url)
    await store.open()
    try:
        stored = await store.list_runs(RunQuery(job_id="tick", limit=1000))
        assert len(stored) == 60, sorted(
            (r.scheduled_for.isoformat(), str(r.status), r.skip_reason, r.node_id, r.error)
            for r in stored
            if r.status != RunStatus.succeeded
        )
        done = await store.count_runs(RunQuery(job_id="tick", statuses=(RunStatus.succeeded,)))
        assert done == 60
    finally:
        await store.close()


async def test_a_killed_nodes_long_run_is_interrupted_then_retried_once_on_another_node(
    cluster: Cluster, server: RedisServer
) -> None:
    start = second_boundary(5)
    for node_id in ("n1", "n2", "n3"):
        cluster.start(node_id, "long", start, start, "--lease", "2")
    cluster.wait_ready()
    cluster.wait_for(lambda: any(e["event"] == "start" for e in cluster.entries()), 30, "start")
    [first] = [e for e in cluster.entries() if e["event"] == "start"]
    victim = cluster.nodes[first["node"]]
    os.kill(victim.process.pid, signal.SIGKILL)
    victim.process.wait(10)
    cluster.wait_for(lambda: any(e["event"] == "done" for e in cluster.entries()), 60, "retry")
    await asyncio.sleep(3)  # 1.5 lease periods for a second retry to show up (noqa: sleep-ok)
    cluster.stop()
    starts = [e for e in cluster.entries() if e["event"] == "start"]
    assert [(e["attempt"], e["node"] == victim.node_id) for e in starts] == [(1, True), (2, False)]
    assert len({e["key"] for e in starts}) == 1  # the same occurrence key on both nodes
    store = RedisStore(server.url)
    await store.open()
    try:
        runs = await store.list_runs(RunQuery(job_id="long"))
        by_status = sorted((str(r.status), r.node_id == victim.node_id) for r in runs)
        assert by_status == [("interrupted", True), ("succeeded", False)], [
            (r.run_id, r.node_id, r.attempt, str(r.status), r.started_at, r.error, r.skip_reason)
            for r in sorted(runs, key=lambda r: r.started_at or start)
        ]
    finally:
        await store.close()


async def test_a_ten_second_redis_outage_causes_no_duplicate_and_misfires_per_policy(
    cluster: Cluster, server: RedisServer
) -> None:
    start = second_boundary(5)
    end = start + timedelta(seconds=40)
    for node_id in ("n1", "n2", "n3"):
        cluster.start(node_id, "tick", start, end, "--misfire", "skip")
    cluster.wait_ready()
    cluster.wait_for(lambda: len(cluster.entries()) >= 5, 30, "five runs before the outage")
    server.stop()
    down_at = time.time()
    await asyncio.sleep(10)  # the 10-second outage (noqa: sleep-ok)
    server.start()
    up_at = time.time()
    cluster.wait_for(
        lambda: any(e["key"] > tick_key_at(up_at + 3) for e in cluster.entries()),
        30,
        "runs after the outage",
    )
    cluster.wait_for(
        lambda: all(n.health()[-1:] == ["running"] for n in cluster.nodes.values()),
        20,
        "every node healthy again",
    )
    healths = {n.node_id: n.health() for n in cluster.nodes.values()}
    cluster.stop()
    keys = [e["key"] for e in cluster.entries()]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    during = [k for k in keys if tick_key_at(down_at + 1) < k < tick_key_at(up_at - 1)]
    assert during == []  # misfire=skip: nothing that came due while Redis was away runs
    for node_id, seen in healths.items():
        assert "degraded" in seen and seen[-1] == "running", (node_id, seen)
    store = RedisStore(server.url)
    await store.open()
    try:
        skipped = await store.list_runs(RunQuery(job_id="tick", statuses=(RunStatus.skipped,)))
        assert skipped and all(r.skip_reason == "misfire" for r in skipped)
    finally:
        await store.close()


def tick_key_at(epoch_s: float) -> str:
    from datetime import UTC, datetime

    return tick_key(datetime.fromtimestamp(int(epoch_s), UTC))


async def test_a_node_whose_clock_is_two_seconds_off_never_double_runs(
    cluster: Cluster,
) -> None:
    start = second_boundary(6)
    end = start + timedelta(seconds=14)
    cluster.start("ahead", "tick", start, end, "--skew", "2")
    cluster.start("behind", "tick", start, end, "--skew", "-2")
    cluster.start("right", "tick", start, end)
    cluster.wait_ready()
    expected = {tick_key(start + timedelta(seconds=i)) for i in range(15)}
    cluster.wait_for(
        lambda: {e["key"] for e in cluster.entries()} >= expected, 40, "15 occurrences"
    )
    await asyncio.sleep(3)  # let the node 2 s behind reach the last fires (noqa: sleep-ok)
    cluster.stop()
    runs = Counter(e["key"] for e in cluster.entries())
    assert set(runs) == expected
    assert all(count == 1 for count in runs.values()), runs.most_common(3)
