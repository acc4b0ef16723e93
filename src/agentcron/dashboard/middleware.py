"""Plain ASGI middleware of the dashboard: a request-body cap and `/api/job?id=` addressing.

* `BodyLimit` reads a request's body before the app sees it and answers 413 once it passes
  `max_bytes`, whether the size was declared (`Content-Length`) or the body is streamed
  (`Transfer-Encoding: chunked`): nothing bigger is ever buffered or parsed. A client that
  hangs up before its body ends is logged at DEBUG, not as an error.
* `JobIdInQuery` serves `/api/job{suffix}?id=<id>` as `/api/jobs/<id>{suffix}`. Browsers
  remove the path segments `.` and `..`, even spelt `%2E%2E` (the WHATWG URL rules), so a job
  with such an id cannot be addressed as `/api/jobs/{id}` from the page; the rest of the
  query string is passed on as it is.
"""

from __future__ import annotations

import logging
import urllib.parse

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DOT_ID_SUFFIXES", "BodyLimit", "JobIdInQuery"]

#: The job routes reachable as `/api/job{suffix}?id=...` (the suffixes of `/api/jobs/{id}`).
DOT_ID_SUFFIXES = frozenset({"", "/run", "/pause", "/resume", "/runs"})
_PREFIX = "/api/job"

log = logging.getLogger("agentcron.dashboard")


class BodyLimit:
    """413 with a JSON `detail` for a request body over `max_bytes` (0: no limit)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self._client_gone(scope, receive, send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        ]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _client_gone(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Not an error: a client may hang up at any time. A response is still sent (the
        # server drops it): returning without one is an error to the HTTP middleware
        # around this one ("No response returned.").
        log.debug(
            "%s %s: the client closed the connection before the body ended",
            scope.get("method"), scope.get("path"),
        )  # fmt: skip
        response = JSONResponse(
            {"detail": "the client closed the connection before the body ended"},
            status_code=400,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body too large (at most {self.max_bytes} bytes)"},
            status_code=413,
            headers={"Connection": "close"},  # the rest of the body is never read
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class JobIdInQuery:
    """Serve `/api/job{suffix}?id=<id>` as `/api/jobs/<id>{suffix}` (see the module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(_PREFIX) or path[len(_PREFIX) :] not in DOT_ID_SUFFIXES:
            await self.app(scope, receive, send)
            return
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ids = query.get("id", [])
        if len(ids) != 1 or "/" in ids[0]:
            error = (
                JSONResponse({"detail": f"unknown job {ids[0]!r}"}, status_code=404)
                if len(ids) == 1
                else JSONResponse({"detail": "give the job id once: ?id=<id>"}, status_code=422)
            )
            await error(scope, receive, send)
            return
        job_path = f"/api/jobs/{ids[0]}{path[len(_PREFIX) :]}"
        raw = f"/api/jobs/{urllib.parse.quote(ids[0], safe='')}{path[len(_PREFIX) :]}"
        await self.app({**scope, "path": job_path, "raw_path": raw.encode("ascii")}, receive, send)
