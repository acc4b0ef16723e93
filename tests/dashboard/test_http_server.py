"""The dashboard as HTTP clients other than the page see it, over real uvicorn on loopback:
health checkers that send HEAD, and clients that hang up in the middle of a request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import httpx
import pytest
from tests.dashboard.conftest import TOKEN, LiveServer

#: The loggers a daemon's operator reads: ours, and uvicorn's errors.
LOGGERS = ("agentcron.dashboard", "uvicorn.error")


class Records(logging.Handler):
    """Every record of `LOGGERS` (uvicorn's do not propagate to pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.changed.set()

    def lines(self, level: int) -> list[str]:
        return [
            f"{r.name} {r.levelname}: {r.getMessage()}" for r in self.records if r.levelno >= level
        ]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


async def test_a_client_that_hangs_up_mid_body_is_not_logged_as_an_error(
    live: LiveServer, records: Records
) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    for path in ("/api/jobs", "/api/jobs/backup/pause", "/api/cron/validate"):
        records.records.clear()
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\n\r\n".encode()
            + b'{"id": '  # 7 of the 1000 bytes, then the client goes away
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        # The server notices the hang-up and says so (at DEBUG) once it has dealt with it;
        # it used to log two ERROR tracebacks ("dashboard error on POST ..." and uvicorn's
        # "Exception in ASGI application ... RuntimeError: No response returned.").
        async with asyncio.timeout(10):
            while not any("closed the connection" in line for line in records.lines(0)):
                if records.lines(logging.WARNING):
                    break
                records.changed.clear()
                await records.changed.wait()
        assert records.lines(logging.WARNING) == [], path
        assert not any(r.exc_info for r in records.records), path
    async with httpx.AsyncClient(base_url=live.url) as client:  # and it still serves
        assert (await client.get("/healthz")).json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path", ["/", "/healthz", "/favicon.ico", "/static/app.js", "/static/app.css"]
)
async def test_head_is_answered_like_get_without_a_body(live: LiveServer, path: str) -> None:
    async with httpx.AsyncClient(base_url=live.url) as client:
        got = await client.get(path)
        head = await client.head(path)
    assert got.status_code == 200, got.text
    assert head.status_code == 200, (path, head.status_code)  # was 405 for / and /healthz
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["content-security-policy"] == got.headers["content-security-policy"]
