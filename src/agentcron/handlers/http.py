"""`Http`: call a URL for each attempt (a webhook, an agent's own API).

Success is a status in `ok_statuses` (default 2xx); any other status fails the attempt with
the status and the tail of the body. Each request carries the attempt's identity in headers,
including `Idempotency-Key: <occurrence key>` (the same for every retry of one fire), unless
the caller set those headers. Redirects are not followed. httpx is imported on the first request only.
"""

from __future__ import annotations

import base64
import json as jsonlib
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from agentcron.handlers.base import HandlerError, HandlerOutcome, RunContext
from agentcron.handlers.checks import (
    checked_duration_s,
    checked_tail_bytes,
)
from agentcron.handlers.output import OutputTail
from agentcron.handlers.persisted import checked_fields

__all__ = ["HEADER_NAME", "Http", "HttpStatusError"]

_OPTIONAL_FIELDS = (
    "method", "headers", "json", "body", "body_base64", "timeout_s", "ok_statuses",
    "output_tail_bytes",
)  # fmt: skip
_METHOD = re.compile(r"^[A-Z]+$")


class HttpStatusError(HandlerError):
    """The server answered with a status outside `ok_statuses`."""

    def __init__(self, message: str, *, status: int, output_tail: str | None) -> None:
        super().__init__(message, output_tail=output_tail)
        self.status = status


class Http:
    """An HTTP request made for each attempt, with `httpx.AsyncClient`.

    Give at most one of `json` (sent as JSON) and `body` (str or bytes, sent as is).
    `timeout_s` bounds connect, read, write and pool waits (each), independently of the
    job's own timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: str | bytes | None = None,
        timeout_s: float = 30.0,
        ok_statuses: Iterable[int] = range(200, 300),
        output_tail_bytes: int = 4096,
    ) -> None:
        self.url = _checked_url(url)
        self.method = _checked_method(method)
        self.headers = _checked_headers(headers)
        if json is not None and body is not None:
            raise ValueError("http handler: give json or body, not both")
        if json is not None:
            _check_plain_json(json)
        if body is not None and not isinstance(body, str | bytes):
            raise ValueError(f"http body must be str or bytes, got {type(body).__name__}")
        self.json = json
        self.body = body
        self.timeout_s = checked_duration_s(timeout_s, "http timeout_s", allow_zero=False)
        self.ok_statuses = _checked_statuses(ok_statuses)
        self.output_tail_bytes = checked_tail_bytes(output_tail_bytes, "http output_tail_bytes")

    async def run(self, ctx: RunContext) -> HandlerOutcome:
        import httpx  # imported on first use: it is heavy, and most processes never need it

        headers = {**_context_headers(ctx), **self.headers}
        tail = OutputTail(self.output_tail_bytes)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                request = client.build_request(
                    self.method, self.url, headers=headers, json=self.json, content=self.body
                )
                response = await client.send(request, stream=True)
                try:
                    async for chunk in response.aiter_bytes():
                        tail.write(chunk)
                finally:
                    await response.aclose()
        except httpx.TimeoutException as exc:
            raise HandlerError(
                f"{self.describe()}: timed out after {self.timeout_s:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise HandlerError(f"{self.describe()}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        output = _status_and_tail(f"HTTP {status} {response.reason_phrase}", tail)
        if status not in self.ok_statuses:
            raise HttpStatusError(
                f"{self.describe()}: HTTP status {status}", status=status, output_tail=output
            )
        return HandlerOutcome(output_tail=output, value=status)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": "http",
            "url": self.url,
            "method": self.method,
            "headers": dict(self.headers),
            "json": self.json,
            "timeout_s": self.timeout_s,
            "ok_statuses": _status_ranges(self.ok_statuses),
            "output_tail_bytes": self.output_tail_bytes,
        }
        if isinstance(self.body, bytes):
            data["body_base64"] = base64.b64encode(self.body).decode("ascii")
        else:
            data["body"] = self.body
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Http:
        fields = checked_fields(data, kind="http", required=("url",), optional=_OPTIONAL_FIELDS)
        encoded = fields.pop("body_base64", None)
        if encoded is not None:
            if "body" in fields and fields["body"] is not None:
                raise ValueError("http handler definition: give body or body_base64, not both")
            fields["body"] = base64.b64decode(encoded, validate=True)
        if "ok_statuses" in fields:
            fields["ok_statuses"] = _statuses_from_ranges(fields["ok_statuses"])
        return cls(fields.pop("url"), **fields)

    def describe(self) -> str:
        return f"http {self.method} {self.url}"

    def __repr__(self) -> str:
        return f"Http({self.url!r}, method={self.method!r})"


def _context_headers(ctx: RunContext) -> dict[str, str]:
    return {
        "Idempotency-Key": ctx.occurrence_key,
        "X-Agentcron-Job-Id": ctx.job_id,
        "X-Agentcron-Run-Id": ctx.run_id,
        "X-Agentcron-Attempt": str(ctx.attempt),
    }


def _check_plain_json(value: Any) -> None:
    try:
        jsonlib.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"http json must be plain JSON data, got {value!r} ({exc})") from exc


def _checked_url(url: object) -> str:
    if not isinstance(url, str):
        raise ValueError(f"http url must be a string, got {url!r}")
    try:
        parsed = urllib.parse.urlsplit(url)
        parsed.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ValueError(f"http url {url!r} is invalid: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"http url {url!r} must be an http:// or https:// URL with a host")
    return url


def _checked_method(method: object) -> str:
    if not isinstance(method, str) or not _METHOD.match(method.upper()):
        raise ValueError(f"http method must be a word such as 'POST', got {method!r}")
    return method.upper()


#: An HTTP header name: an RFC 9110 token (`fullmatch`); the one rule of every header set
#: in agentcron (HTTP handlers, webhook sinks, the API's job definitions).
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _checked_headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in headers.items()
    ):
        raise ValueError(f"http headers must map strings to strings, got {headers!r}")
    for name, value in headers.items():
        # A line break would end the header early (header injection) or fail every run.
        if not HEADER_NAME.fullmatch(name):
            raise ValueError(
                f"http header name {name!r} must be letters, digits and !#$%&'*+-.^_`|~ only"
            )
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"http header {name!r} has a line break or NUL in its value")
    return dict(headers)


#: The longest `output_tail` a run keeps (the engine keeps the end of a longer one).
OUTPUT_TAIL_CHARS = 4000


def _status_and_tail(status_line: str, tail: OutputTail) -> str:
    """`status_line`, then the end of the body: at most `OUTPUT_TAIL_CHARS` characters in
    all, so that the status line, first, is never the part cut."""
    status_line = status_line[:200]
    room = OUTPUT_TAIL_CHARS - len(status_line) - 1
    body = tail.raw().decode("utf-8", errors="replace")
    dropped = tail.dropped_bytes
    if not dropped and len(body) <= room:
        return f"{status_line}\n{body}"
    keep = room
    while True:  # (the marker's length depends on the count it shows: a few turns)
        kept = body[len(body) - keep :] if keep > 0 else ""
        omitted = dropped + len(body[: len(body) - len(kept)].encode("utf-8", "replace"))
        marker = f"[... {omitted} earlier bytes omitted ...]\n"
        if len(marker) + len(kept) <= room or keep == 0:
            return f"{status_line}\n{marker}{kept}"
        keep = max(0, room - len(marker))


def _checked_statuses(statuses: object) -> frozenset[int]:
    if isinstance(statuses, str | bytes) or not isinstance(statuses, Iterable):
        raise ValueError(f"http ok_statuses must be a collection of integers, got {statuses!r}")
    items = frozenset(statuses)
    if not items or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in items
    ):
        raise ValueError(f"http ok_statuses must be HTTP status codes (100-599), got {statuses!r}")
    return items


def _status_ranges(statuses: frozenset[int]) -> list[list[int]]:
    """`{200, ..., 299, 304}` -> `[[200, 299], [304, 304]]` (inclusive bounds)."""
    ranges: list[list[int]] = []
    for status in sorted(statuses):
        if ranges and ranges[-1][1] == status - 1:
            ranges[-1][1] = status
        else:
            ranges.append([status, status])
    return ranges


def _statuses_from_ranges(ranges: object) -> set[int]:
    if not isinstance(ranges, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(b, int) for b in pair)
        for pair in ranges
    ):
        raise ValueError(f"http ok_statuses must be a list of [low, high] pairs, got {ranges!r}")
    return {status for low, high in ranges for status in range(low, high + 1)}
