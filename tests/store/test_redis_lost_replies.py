"""A reply lost on the way back from Redis: the client sends the command again (redis-py
retries once on a dropped connection), and the server has run it twice. Claims must come
out the same as if the first reply had arrived: neither lost nor doubled.

Real parts: a throwaway redis-server and a loopback proxy that drops one reply
(`helpers.tcp_proxy`).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agentcron.models import FireStart, RunRecord, RunStatus
from agentcron.store.redis import RedisStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.redis_server import RedisServer
from helpers.tcp_proxy import LossyProxy

pytestmark = pytest.mark.redis

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def proxied(redis_server: RedisServer) -> AsyncIterator[tuple[RedisStore, LossyProxy]]:
    import redis

    with redis.Redis(host="127.0.0.1", port=redis_server.port) as client:
        client.flushdb()
    proxy = await LossyProxy.start(redis_server.port)
    store = RedisStore(f"redis://127.0.0.1:{proxy.port}/0")
    await store.open()
    try:
        yield store, proxy
    finally:
        await store.close()
        await proxy.close()


def running(job_id: str, run_id: str, at: datetime) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        job_id=job_id,
        scheduled_for=at,
        status=RunStatus.running,
        started_at=at,
        node_id="n1",
        lease_expires_at=at + timedelta(seconds=60),
    )


async def test_fires_started_when_the_reply_was_lost_are_still_won_and_recorded(
    proxied: tuple[RedisStore, LossyProxy],
) -> None:
    store, proxy = proxied
    fire = T0 + timedelta(seconds=1)
    warm = FireStart("warm-up", T0, fire, T0, running("warm-up", "w", T0))
    assert await store.start_fires([warm], "n1", now=T0) == [True]  # its script is loaded
    proxy.lose_reply_to(b"EVALSHA")
    starts = [
        FireStart("digest", fire, None, fire, running("digest", "r1", fire)),
        FireStart("report", fire, None, fire, None),
    ]
    assert await store.start_fires(starts, "n1", now=fire) == [True, True]
    assert proxy.replies_lost == 1
    stored = await store.get_run("r1")
    assert stored is not None and stored.status == RunStatus.running
    # Won once: another call for the same occurrences, from the same node, loses them.
    assert await store.start_fires(starts, "n1", now=fire) == [False, False]


async def test_a_claim_whose_reply_was_lost_is_still_won_once(
    proxied: tuple[RedisStore, LossyProxy],
) -> None:
    store, proxy = proxied
    assert await store.claim_fire("warm-up", T0, "n1", now=T0)
    proxy.lose_reply_to(b"EVALSHA")
    assert await store.claim_fire("digest", T0, "n1", now=T0)
    assert proxy.replies_lost == 1
    assert not await store.claim_fire("digest", T0, "n1", now=T0)
    assert not await store.claim_fire("digest", T0, "n2", now=T0)


async def test_one_occurrence_twice_in_one_call_is_won_once_even_when_sent_again(
    proxied: tuple[RedisStore, LossyProxy],
) -> None:
    store, proxy = proxied
    assert await store.start_fires([FireStart("warm-up", T0, None, T0)], "n1", now=T0) == [True]
    proxy.lose_reply_to(b"EVALSHA")
    twice = [FireStart("digest", T0, None, T0), FireStart("digest", T0, None, T0)]
    assert await store.start_fires(twice, "n1", now=T0) == [True, False]
    assert proxy.replies_lost == 1


async def test_runs_recorded_in_a_batch_while_redis_lost_its_scripts_are_still_recorded(
    proxied: tuple[RedisStore, LossyProxy], redis_server: RedisServer
) -> None:
    # A batch checks that its scripts are loaded, then sends them: a Redis restarted in
    # between (seen in CI) answers NOSCRIPT, and the batch of final records was lost.
    import redis

    store, proxy = proxied
    assert await store.record_runs([running("warm-up", "w", T0)]) == [True]
    with redis.Redis(host="127.0.0.1", port=redis_server.port) as raw:
        proxy.before(b"EVALSHA", raw.script_flush)  # after the check, before the batch
        done = RunStatus.succeeded
        finals = [running("digest", f"r{n}", T0)._replace(status=done) for n in (1, 2)]
        assert await store.record_runs(finals) == [True, True]
    stored = await store.get_run("r2")
    assert stored is not None and stored.status == RunStatus.succeeded
