"""What only the Redis store does: URLs, start-up refusals, prefixes, bounds, outages.

The `Store` contract itself runs on Redis in `test_store_contract.py` (the `redis` param).
Every test here talks to a throwaway redis-server it starts (never the machine's 6379).
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from agentcron.models import RunQuery, RunRecord, RunStatus, StoredJob
from agentcron.store.base import StoreError, open_store
from agentcron.store.redis import RedisStore, StoreUnavailableError, mask_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _digest_definition() -> dict[str, object]:
    from agentcron.jobs import build_job, job_to_definition

    job = build_job("digest", trigger="0 9 * * *", handler="json:dumps")
    return job_to_definition(job)


DIGEST = _digest_definition()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def keys_of(server: RedisServer, db: int = 0) -> list[bytes]:
    with redis.Redis(host="127.0.0.1", port=server.port, password=server.password, db=db) as c:
        return sorted(c.keys("*"))


def a_run(run_id: str, second: float = 0, status: RunStatus = RunStatus.succeeded) -> RunRecord:
    return RunRecord(
        run_id=run_id, job_id="digest", scheduled_for=at(second), status=status, node_id="n1"
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
async def store(server: RedisServer) -> AsyncIterator[RedisStore]:
    backend = RedisStore(server.url, write_retry_s=20.0)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


# -- URLs --------------------------------------------------------------------------------------
def test_open_store_builds_a_redis_store_from_a_redis_or_rediss_url() -> None:
    plain = open_store("redis://:s3cret@127.0.0.1:6390/2?prefix=team-a")
    assert isinstance(plain, RedisStore)
    assert plain.prefix == "team-a"
    assert "s3cret" not in plain.url and "***" in plain.url
    assert isinstance(open_store("rediss://127.0.0.1:6390/0"), RedisStore)


def test_the_password_is_masked_and_other_urls_are_left_alone() -> None:
    assert mask_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("redis://user:pw@h/0") == "redis://user:***@h/0"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6390/x", "redis://127.0.0.1:6390/0?prefix=a*b", "http://127.0.0.1/"],
)
def test_a_malformed_url_is_refused_before_connecting(url: str) -> None:
    with pytest.raises(ValueError):
        RedisStore(url)


# -- refusals at start-up ------------------------------------------------------------------------
async def test_a_wrong_password_is_refused_naming_the_url_with_the_password_masked(
    tmp_path: Path,
) -> None:
    srv = RedisServer(tmp_path / "redis", password="right-one").start()
    try:
        url = f"redis://:wrong-one@127.0.0.1:{srv.port}/0"
        with pytest.raises(StoreError) as info:
            await RedisStore(url).open()
        message = str(info.value)
        assert "authentication" in message and f"127.0.0.1:{srv.port}" in message
        assert "wrong-one" not in message and "***" in message
        assert keys_of(srv) == []
    finally:
        srv.stop()


async def test_a_database_index_the_server_does_not_have_is_refused(server: RedisServer) -> None:
    with pytest.raises(StoreError, match="database index"):
        await RedisStore(f"redis://127.0.0.1:{server.port}/99").open()
    assert keys_of(server) == []


async def test_a_server_that_does_not_speak_redis_is_refused() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    done = threading.Event()

    def answer_garbage() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:  # the accept timeout: look at `done` again
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        with pytest.raises(StoreError) as info:
            await RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout_s=1.0).open()
        assert f"127.0.0.1:{port}" in str(info.value)
    finally:
        done.set()
        thread.join(5)
        listener.close()


async def test_nothing_listening_is_a_clear_start_up_error() -> None:
    port = free_port()
    with pytest.raises(StoreError, match="cannot talk to Redis"):
        await RedisStore(f"redis://127.0.0.1:{port}/0").open()


async def test_a_prefix_holding_foreign_keys_is_refused_and_nothing_is_written(
    server: RedisServer,
) -> None:
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        client.set("agentcron:session:42", "someone else's")
    before = keys_of(server)
    with pytest.raises(StoreError, match="not agentcron's"):
        await RedisStore(server.url).open()
    assert keys_of(server) == before
    other = RedisStore(server.url + "?prefix=mine")  # another prefix is fine
    await other.open()
    await other.close()


async def test_a_node_starting_while_another_marks_the_new_prefix_is_not_refused(
    server: RedisServer,
) -> None:
    # Three nodes starting at once on a new Redis: one read the prefix's marker before
    # another wrote it, then found that node's keys and refused them as foreign (seen in CI).
    class MarkedMeanwhile(aioredis.Redis):
        """A real client; right after its first read, another node marks the prefix."""

        other_node_started = False

        async def hgetall(self, name: str) -> Any:
            result = await super().hgetall(name)
            if not self.other_node_started:
                self.other_node_started = True
                other = RedisStore(server.url)
                await other.open()
                await other.close()
            return result

    store = RedisStore(server.url)
    client = MarkedMeanwhile.from_url(server.url)
    try:
        await store._check(client)  # the start-up check, on the client `open()` would make
    finally:
        await client.aclose()
    assert client.other_node_started
    await store.open()
    await store.close()


async def test_a_prefix_written_by_a_newer_schema_is_refused(server: RedisServer) -> None:
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        client.hset("agentcron:meta", mapping={"app": "agentcron-store", "schema": "99"})
    with pytest.raises(StoreError, match="newer"):
        await RedisStore(server.url).open()


# -- prefixes, bounds, durability ----------------------------------------------------------------
async def test_two_prefixes_on_one_server_do_not_see_each_other(server: RedisServer) -> None:
    team_a, team_b = RedisStore(server.url + "?prefix=a"), RedisStore(server.url + "?prefix=b")
    await team_a.open()
    await team_b.open()
    try:
        await team_a.save_job(StoredJob(id="digest", definition={"x": 1}), actor="cli")
        assert await team_a.claim_fire("digest", at(0), "n1", now=at(0))
        assert await team_b.list_jobs() == []
        assert await team_b.claim_fire("digest", at(0), "n1", now=at(0))
        assert all(k.startswith((b"a:", b"b:")) for k in keys_of(server))
    finally:
        await team_a.close()
        await team_b.close()


async def test_each_jobs_run_log_is_bounded_dropping_the_oldest_final_runs(
    server: RedisServer,
) -> None:
    store = RedisStore(server.url, max_runs_per_job=5)
    await store.open()
    try:
        await store.record_run(a_run("live", second=-1, status=RunStatus.running))
        for i in range(10):
            await store.record_run(a_run(f"r{i}", second=i))
        left = [r.run_id for r in await store.list_runs(RunQuery(job_id="digest"))]
        assert left == ["r9", "r8", "r7", "r6", "live"]
    finally:
        await store.close()


async def test_claims_expire_after_their_ttl_on_the_server(server: RedisServer) -> None:
    store = RedisStore(server.url, claim_ttl_s=3600)
    await store.open()
    try:
        assert await store.claim_fire("digest", at(0), "n1", now=at(0))
        with redis.Redis(host="127.0.0.1", port=server.port) as client:
            [key] = client.keys("agentcron:claim:*")
            assert 3500 < client.ttl(key) <= 3600
            assert client.get(key).endswith(b" n1")  # "<call token> <node>"
    finally:
        await store.close()


async def test_everything_survives_a_redis_restart(server: RedisServer, store: RedisStore) -> None:
    await store.save_job(StoredJob(id="digest", definition={"x": 1}), actor="cli")
    await store.record_run(a_run("r1"))
    assert await store.claim_fire("digest", at(0), "n1", now=at(0))
    server.restart()
    await store.wait_available()
    assert (await store.get_job("digest")) is not None
    assert (await store.get_run("r1")) == a_run("r1")
    assert not await store.claim_fire("digest", at(0), "n2", now=at(0))


# -- connection loss -----------------------------------------------------------------------------
async def test_an_outage_raises_unavailable_and_a_probe_notices_the_return(
    server: RedisServer, store: RedisStore
) -> None:
    assert store.available
    server.stop()
    with pytest.raises(StoreUnavailableError) as info:
        await store.claim_fire("digest", at(0), "n1", now=at(0))
    assert store.url in str(info.value)
    assert not store.available
    server.start()
    await asyncio.wait_for(store.wait_available(), 30)
    assert store.available
    assert await store.claim_fire("digest", at(0), "n1", now=at(0))


async def test_a_result_recorded_during_an_outage_is_written_when_redis_returns(
    server: RedisServer, store: RedisStore
) -> None:
    await store.record_run(a_run("r1", status=RunStatus.running))
    server.stop()
    done = a_run("r1")
    pending = asyncio.ensure_future(store.record_run(done))
    with pytest.raises(StoreUnavailableError):
        await store.get_run("r1")
    assert not pending.done()
    server.start()
    assert await asyncio.wait_for(pending, 30)
    assert await store.get_run("r1") == done


# -- the CLI with --store redis://... ------------------------------------------------------------
async def test_the_cli_reads_jobs_from_redis_given_by_store(
    server: RedisServer, store: RedisStore
) -> None:
    from typer.testing import CliRunner

    from agentcron.cli.main import build_app

    await store.save_job(StoredJob(id="digest", definition=DIGEST), actor="cli")
    result = await asyncio.to_thread(
        CliRunner().invoke, build_app(), ["jobs", "list", "--json", "--store", server.url]
    )
    assert result.exit_code == 0, result.output
    assert '"digest"' in result.output


async def test_the_cli_refuses_a_wrong_password_in_one_line_without_showing_it(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from agentcron.cli.main import build_app

    srv = RedisServer(tmp_path / "redis", password="right-one").start()
    try:
        url = f"redis://:wrong-one@127.0.0.1:{srv.port}/0"
        result = await asyncio.to_thread(
            CliRunner().invoke, build_app(), ["jobs", "list", "--store", url]
        )
        assert result.exit_code == 2
        assert result.output.count("\n") == 1 and "authentication failed" in result.output
        assert "wrong-one" not in result.output
    finally:
        srv.stop()


# -- two nodes, two connections ------------------------------------------------------------------
async def test_a_partitioned_node_whose_run_was_taken_over_cannot_record_or_renew_it(
    server: RedisServer, store: RedisStore
) -> None:
    other = RedisStore(server.url)
    await other.open()
    try:
        assert await store.claim_fire("digest", at(0), "n1", now=at(0))
        assert not await other.claim_fire("digest", at(0), "n2", now=at(0))
        running = a_run("r1", status=RunStatus.running).evolve(lease_expires_at=at(60))
        assert await store.record_run(running)
        # n1 is cut off and stops renewing; n2 sees the lease expire and takes the run over.
        [taken] = await other.interrupt_expired(at(61))
        assert taken.fence == 1 and taken.status == RunStatus.interrupted
        retry = taken.evolve(status=RunStatus.running, attempt=2, node_id="n2", finished_at=None)
        assert await other.record_run(retry.evolve(lease_expires_at=at(120)))
        # n1 comes back: its renewal and its late result are refused by the fence.
        assert not await store.renew_lease("r1", "n1", 0, until=at(200))
        assert not await store.record_run(a_run("r1").evolve(fence=0))
        assert await other.record_run(retry.evolve(status=RunStatus.succeeded))
        assert (await store.get_run("r1")).node_id == "n2"  # type: ignore[union-attr]
    finally:
        await other.close()


# -- settings -------------------------------------------------------------------------------------
def test_scheduler_store_redis_uses_the_redis_variables() -> None:
    from agentcron.config import load_settings

    environ = {
        "SCHEDULER_STORE": "redis",
        "REDIS_HOST": "10.0.0.5",
        "REDIS_PORT": "6380",
        "REDIS_PASSWORD": "p@ss word",
        "REDIS_DB": "3",
    }
    settings = load_settings(environ=environ, env_file=None)
    assert settings.store_url == "redis://:p%40ss%20word@10.0.0.5:6380/3"
    store = open_store(settings.store_url)
    assert isinstance(store, RedisStore)
    assert store.url == "redis://:***@10.0.0.5:6380/3"


async def test_the_decoded_password_reaches_the_server(tmp_path: Path) -> None:
    srv = RedisServer(tmp_path / "redis", password="p@ss word").start()
    try:
        store = RedisStore(f"redis://:p%40ss%20word@127.0.0.1:{srv.port}/0")
        await store.open()
        await store.close()
    finally:
        srv.stop()


async def test_the_cli_finds_redis_from_the_redis_variables(
    server: RedisServer, store: RedisStore
) -> None:
    from typer.testing import CliRunner

    from agentcron.cli.main import build_app

    await store.save_job(StoredJob(id="digest", definition=DIGEST), actor="cli")
    env = {"SCHEDULER_STORE": "redis", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(server.port)}
    result = await asyncio.to_thread(
        CliRunner().invoke, build_app(), ["jobs", "list", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert '"digest"' in result.output


# -- TLS ------------------------------------------------------------------------------------------
@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A redis-server speaking only TLS with a throwaway self-signed certificate."""
    import shutil
    import subprocess

    from helpers.redis_server import redis_server_binary

    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for a throwaway certificate (scripts/install-system-deps)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(cert),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):  # until it listens
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.02)  # a starting server, bounded (noqa: sleep-ok)
        yield port, cert
    finally:
        server.terminate()
        server.wait(10)


async def test_a_rediss_url_talks_tls_and_checks_the_servers_certificate(
    tls_server: tuple[int, Path],
) -> None:
    port, cert = tls_server
    trusted = RedisStore(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
    await trusted.open()
    assert await trusted.claim_fire("digest", at(0), "n1", now=at(0))
    await trusted.close()
    with pytest.raises(StoreError):  # the system CAs do not know this certificate
        await RedisStore(f"rediss://127.0.0.1:{port}/0", socket_timeout_s=2.0).open()
    with pytest.raises(StoreError):  # and plain text is not TLS
        await RedisStore(f"redis://127.0.0.1:{port}/0", socket_timeout_s=2.0).open()
