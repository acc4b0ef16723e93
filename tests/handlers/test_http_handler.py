"""Http against a real server on 127.0.0.1 (a free port, a thread of this process)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from handler_helpers import WAIT_LIMIT_S, make_context

from agentcron.engine import Scheduler
from agentcron.handlers import HandlerError, Http, HttpStatusError
from agentcron.testing import VirtualClock


@dataclass
class Server:
    base_url: str
    requests: list[dict[str, object]] = field(default_factory=list)
    release_slow: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
            )
            self.do_GET()

        def do_GET(self) -> None:
            if self.path == "/slow":
                state.release_slow.wait(WAIT_LIMIT_S)  # released at teardown
            status = 500 if self.path == "/fail" else 200
            body = b"x" * 10_000 + b"boom" if self.path == "/fail" else b'{"ok": true}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release_slow.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(WAIT_LIMIT_S)


async def test_a_2xx_answer_succeeds_with_the_status_and_body(server: Server) -> None:
    outcome = await Http(f"{server.base_url}/ok", json={"n": 1}).run(make_context("hook"))
    assert outcome.value == 200
    assert outcome.output_tail == 'HTTP 200 OK\n{"ok": true}'
    request = server.requests[0]
    assert request["body"] == b'{"n":1}'
    headers = request["headers"]
    assert isinstance(headers, dict)
    assert headers["Idempotency-Key"] == "hook@2026-03-08T06:00:00+00:00"
    assert headers["X-Agentcron-Attempt"] == "1"


async def test_a_get_with_custom_headers(server: Server) -> None:
    outcome = await Http(f"{server.base_url}/ok", method="get", headers={"X-Key": "k"}).run(
        make_context()
    )
    assert outcome.value == 200


async def test_a_500_fails_with_the_status_and_the_tail_of_the_body(server: Server) -> None:
    with pytest.raises(HttpStatusError) as caught:
        await Http(f"{server.base_url}/fail", output_tail_bytes=100).run(make_context())
    assert caught.value.status == 500
    assert "HTTP status 500" in str(caught.value)
    tail = caught.value.output_tail
    assert tail is not None and tail.endswith("boom") and len(tail) < 200


async def test_ok_statuses_can_accept_other_codes(server: Server) -> None:
    outcome = await Http(f"{server.base_url}/fail", ok_statuses=[500]).run(make_context())
    assert outcome.value == 500


async def test_a_slow_server_times_out_as_a_handler_error(server: Server) -> None:
    with pytest.raises(HandlerError, match="timed out after 0.2 s"):
        await Http(f"{server.base_url}/slow", timeout_s=0.2).run(make_context())


async def test_a_refused_connection_is_a_handler_error(server: Server) -> None:
    closed_port_url = "http://127.0.0.1:9/"  # the discard port: nothing listens on loopback
    with pytest.raises(HandlerError, match="ConnectError"):
        await Http(closed_port_url, timeout_s=5).run(make_context())


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("file:///etc/passwd", {}, "http:// or https://"),
        ("http:///nohost", {}, "with a host"),
        ("http://h:99999/", {}, "invalid"),
        ("http://h/", {"json": {"a": 1}, "body": "b"}, "not both"),
        ("http://h/", {"method": "GET /x"}, "method"),
        ("http://h/", {"timeout_s": 0}, "timeout_s"),
        ("http://h/", {"ok_statuses": [700]}, "ok_statuses"),
        ("http://h/", {"json": {"a": object()}}, "plain JSON"),
        # Accepted before, from agentcron.toml: header injection, or a failure at each run.
        ("http://h/", {"headers": {"X-A\r\nX-Evil": "1"}}, "header name"),
        ("http://h/", {"headers": {"X A": "1"}}, "header name"),
        ("http://h/", {"headers": {"X-A": "1\r\nX-Evil: 2"}}, "line break"),
    ],
)
def test_bad_arguments_are_rejected_at_creation(
    url: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Http(url, **kwargs)  # type: ignore[arg-type]


async def test_the_status_line_stays_first_with_a_long_body(server: Server) -> None:
    # /fail answers 10,004 bytes: more than the 4,000 characters a run keeps.
    for tail_bytes in (4096, 100_000):
        with pytest.raises(HttpStatusError) as caught:
            await Http(f"{server.base_url}/fail", output_tail_bytes=tail_bytes).run(make_context())
        tail = caught.value.output_tail
        assert tail is not None and len(tail) <= 4000
        first, marker, *_ = tail.splitlines()
        assert first == "HTTP 500 Internal Server Error"
        assert marker.startswith("[... ") and marker.endswith(" earlier bytes omitted ...]")
        omitted = int(marker.split()[1])
        assert omitted + len(tail.split("\n", 2)[2]) == 10_004
        assert tail.endswith("xboom")


async def test_a_run_keeps_the_status_line_of_a_long_answer(server: Server) -> None:
    sched = Scheduler(clock=VirtualClock(datetime(2026, 3, 8, 6, tzinfo=UTC)))
    sched.add_job("hook", trigger="@hourly", handler=Http(f"{server.base_url}/fail"))
    async with sched:
        run = await sched.run_now("hook")
    assert run.output_tail is not None
    assert run.output_tail.splitlines()[0] == "HTTP 500 Internal Server Error"
    assert run.output_tail.endswith("xboom")
