"""A job's ping URL (healthchecks.io style: the path is the secret, the user info a
password) is never logged or echoed whole: scheme and host only, as webhook sinks do."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agentcron.events import EventBus, RunStarted, RunSucceeded
from agentcron.heartbeat.deadman import JobPinger, PingUrls
from agentcron.jobfile import JobFileError, load_job_file

from .conftest import T0

SECRETS = ("PINGPASSWORD", "SECRETUUID")


@pytest.fixture
def failing_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 that answers every POST with 500."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_host() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


async def _ping(host: str, caplog: pytest.LogCaptureFixture) -> str:
    base = f"http://pinguser:PINGPASSWORD@{host}/hc-SECRETUUID-1234"
    bus = EventBus()
    caplog.set_level(logging.WARNING, logger="agentcron.heartbeat.deadman")
    async with JobPinger(bus, {"j": PingUrls.healthchecks(base)}, timeout_s=5) as pinger:
        bus.publish(RunStarted(at=T0, job_id="j", run_id="r", scheduled_for=T0))
        bus.publish(RunSucceeded(at=T0, job_id="j", run_id="r", scheduled_for=T0))
        await pinger.drain()
    assert pinger.failed == 2
    return caplog.text


async def test_an_unreachable_ping_is_logged_without_password_or_secret_path(
    closed_host: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = await _ping(closed_host, caplog)
    assert f"ping 'http://{closed_host}/...' failed" in text
    assert not [s for s in SECRETS if s in text], text


async def test_a_ping_answered_with_an_error_is_logged_without_secrets(
    failing_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    text = await _ping(failing_server, caplog)
    assert f"ping 'http://{failing_server}/...' answered 500" in text
    assert not [s for s in SECRETS if s in text], text


def test_a_bad_ping_url_is_refused_without_echoing_its_secrets() -> None:
    with pytest.raises(ValueError) as error:
        PingUrls(start="ftp://u:PINGPASSWORD@example.org/hc-SECRETUUID")
    assert "ftp://example.org/..." in str(error.value)
    assert not [s for s in SECRETS if s in str(error.value)]


def test_a_bad_ping_url_in_the_job_file_is_refused_without_its_secrets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agentcron.toml"
    path.write_text(
        '[[jobs]]\nid = "j"\ntrigger = "@hourly"\ncommand = ["true"]\n'
        'ping = "ftp://u:PINGPASSWORD@example.org/hc-SECRETUUID"\n'
    )
    with pytest.raises(JobFileError) as error:
        load_job_file(path)
    assert "ping: 'ftp://example.org/...' is not an http(s) URL" in str(error.value)
    assert not [s for s in SECRETS if s in str(error.value)]


async def test_drain_returns_while_an_ended_ping_has_not_left_its_set_yet(bus: EventBus) -> None:
    # As `AlertManager.drain`: looping until the set was empty, over pings that had ended
    # but whose done callback had not run yet, never yielded a turn and spun for ever.
    async with JobPinger(bus, {}, timeout_s=5) as pinger:

        async def ping() -> None:
            return None

        ended = asyncio.get_running_loop().create_task(ping())
        await asyncio.wait({ended})
        pinger._tasks.add(ended)  # as it is between its end and its done callback
        await pinger.drain()
        pinger._tasks.discard(ended)
