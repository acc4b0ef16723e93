"""Where alerts go: `log`, `webhook` (JSON POST, signed) and `command` (argv, no shell).

A sink's `send(alert)` returns when the alert was delivered and raises `SinkError` when it
could not be (after its own retries). Sinks never run a shell and never block the engine:
`AlertManager` calls them in background tasks.

Webhook: `POST <url>` with the alert as JSON (`Alert.to_dict()`), `Content-Type:
application/json`, and, when a secret is set, `X-Agentcron-Signature: sha256=<hex HMAC-SHA256
of the exact body bytes>` (verify with `verify_signature`). Connection errors, timeouts and
answers 408, 429 and 5xx are retried up to `retries` times, waiting `backoff_s`, then twice
that, ... (capped at `max_backoff_s`) on the injected clock; other non-2xx answers are not
retried.

Command: `argv` is run directly (no shell) with the alert JSON on stdin and
`AGENTCRON_ALERT_RULE`, `_KIND`, `_KEY`, `_SEVERITY`, `_MESSAGE` and `_RESOLVED` (`true` for
the message that an incident ended, else `false`) in its environment; it must exit 0 within
`timeout_s` (else it is killed and the delivery fails). The program must exist when the sink
is made (a name without a slash is looked up on `PATH`): a missing one is a `ValueError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from agentcron import __version__
from agentcron.clock import Clock
from agentcron.error_text import head_of, shown_url, storable
from agentcron.handlers.http import HEADER_NAME

__all__ = [
    "SIGNATURE_HEADER",
    "Alert",
    "CommandSink",
    "LogSink",
    "Sink",
    "SinkError",
    "WebhookSink",
    "sign",
    "verify_signature",
]

log = logging.getLogger("agentcron.alerts")

SIGNATURE_HEADER = "X-Agentcron-Signature"
_RETRY_STATUSES = frozenset({408, 429})
#: A webhook's retries and its waits stay within these: an alert retried without end holds
#: a task (and the alert) for as long, and every new alert adds one while the hook is down.
MAX_RETRIES = 100
MAX_BACKOFF_S = 86_400.0
#: a command sink's `AGENTCRON_ALERT_*` values are cut to this (stdin has the whole alert)
ENV_VALUE_CHARS = 4000


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert: which rule fired, about what (`key`), how bad, and why."""

    rule: str
    kind: str
    key: str
    severity: str
    message: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)
    #: True for the message that an alerted incident ended (same rule, kind, key and sinks)
    resolved: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "key": self.key,
            "severity": self.severity,
            "message": self.message,
            "at": self.at.isoformat(),
            "details": self.details,
            "resolved": self.resolved,
            "source": "agentcron",
        }


class SinkError(RuntimeError):
    """A sink could not deliver an alert (the message says why)."""


@runtime_checkable
class Sink(Protocol):
    name: str

    async def send(self, alert: Alert) -> None: ...


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of `body` with `secret` (the signature header's value)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of a received `X-Agentcron-Signature` header."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class LogSink:
    """Writes the alert to the `agentcron.alerts` logger (warning, or error when critical)."""

    def __init__(self, name: str = "log") -> None:
        self.name = name

    async def send(self, alert: Alert) -> None:
        if alert.resolved:
            level = logging.INFO
        else:
            level = logging.ERROR if alert.severity == "critical" else logging.WARNING
        log.log(
            level,
            "%s [%s] %s: %s",
            "RESOLVED" if alert.resolved else "ALERT",
            alert.rule,
            alert.key,
            alert.message,
            extra={"event": "alert", "alert": alert.to_dict()},
        )


class WebhookSink:
    """POSTs the alert as JSON; see the module docstring for signing and retries."""

    def __init__(
        self,
        name: str,
        url: str,
        clock: Clock,
        *,
        secret: str | None = None,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"webhook sink {name!r}: url must be http(s)://..., got {shown_url(url)}"
            )
        # what httpx would refuse only when the first alert is sent, refused now
        try:
            parsed = httpx.URL(url)
            port = parsed.port
        except httpx.InvalidURL as exc:
            raise ValueError(f"webhook sink {name!r}: bad url {shown_url(url)}: {exc}") from None
        if not parsed.host:
            raise ValueError(f"webhook sink {name!r}: url {shown_url(url)} has no host")
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"webhook sink {name!r}: url {shown_url(url)} has a bad port")
        for key, value in (headers or {}).items():
            if not HEADER_NAME.fullmatch(key) or not all(
                c == "\t" or " " <= c <= "~" for c in value
            ):
                raise ValueError(
                    f"webhook sink {name!r}: header {key!r}: names are tokens and values "
                    "printable ASCII (no line breaks)"
                )
        if not (0 < timeout_s < math.inf):
            raise ValueError(f"webhook sink {name!r}: timeout must be positive")
        if not 0 <= retries <= MAX_RETRIES:
            raise ValueError(f"webhook sink {name!r}: retries must be 0-{MAX_RETRIES}")
        if not (0 <= backoff_s <= MAX_BACKOFF_S and 0 <= max_backoff_s <= MAX_BACKOFF_S):
            raise ValueError(  # NaN too
                f"webhook sink {name!r}: backoff and max_backoff must be 0 s to"
                f" {MAX_BACKOFF_S / 3600:g} h"
            )
        self.name = name
        self.url = url
        #: The URL as errors and logs show it: its path, query and credentials are often the
        #: secret itself (a Slack or Teams incoming webhook), so only where it goes.
        where = parsed.netloc.decode("ascii").rpartition("@")[2]  # without user:password
        self.shown_url = f"{parsed.scheme}://{where}/..."
        self.clock = clock
        self.secret = secret or None
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.headers = dict(headers or {})
        self.transport = transport

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        # The exponent is capped: 2 ** 1024 no longer converts to a float.
        return float(min(self.max_backoff_s, self.backoff_s * 2 ** min(attempt - 1, 62)))

    def request_parts(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        body = json.dumps(alert.to_dict(), sort_keys=True, default=str).encode()
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "User-Agent": f"agentcron/{__version__}",
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        return body, headers

    async def send(self, alert: Alert) -> None:
        body, headers = self.request_parts(alert)
        attempts = self.retries + 1
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout_s) as client:
            for attempt in range(1, attempts + 1):
                try:
                    response = await client.post(self.url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    retryable = True
                else:
                    if response.is_success:
                        return
                    problem = f"HTTP {response.status_code}"
                    retryable = (
                        response.status_code >= 500 or response.status_code in _RETRY_STATUSES
                    )
                if not retryable or attempt == attempts:
                    raise SinkError(
                        f"webhook {self.name!r} ({self.shown_url}) failed after {attempt} "
                        f"attempt(s): {problem}"
                    )
                delay = self.backoff(attempt)
                log.warning(
                    "webhook %s attempt %d/%d failed (%s); retrying in %.1fs",
                    self.name,
                    attempt,
                    attempts,
                    problem,
                    delay,
                )
                await self.clock.sleep(delay)


class CommandSink:
    """Runs `argv` (no shell) with the alert on stdin; see the module docstring."""

    def __init__(self, name: str, argv: Sequence[str], *, timeout_s: float = 30.0) -> None:
        if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
            raise ValueError(
                f"command sink {name!r}: command must be a non-empty list of strings (argv), "
                "never a shell string"
            )
        if timeout_s <= 0:
            raise ValueError(f"command sink {name!r}: timeout must be positive")
        if shutil.which(argv[0]) is None:
            raise ValueError(
                f"command sink {name!r}: program {head_of(argv[0], 200)!r} not found"
                + ("" if os.sep in argv[0] else " on PATH")
                + " or not executable"
            )
        self.name = name
        self.argv = list(argv)
        self.timeout_s = timeout_s

    async def send(self, alert: Alert) -> None:
        env = {
            **os.environ,
            "AGENTCRON_ALERT_RULE": _env_value(alert.rule),
            "AGENTCRON_ALERT_KIND": _env_value(alert.kind),
            "AGENTCRON_ALERT_KEY": _env_value(alert.key),
            "AGENTCRON_ALERT_SEVERITY": _env_value(alert.severity),
            "AGENTCRON_ALERT_MESSAGE": _env_value(alert.message),
            "AGENTCRON_ALERT_RESOLVED": "true" if alert.resolved else "false",
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as exc:
            raise SinkError(
                f"command {self.name!r} could not start {self.argv[0]!r}: {exc}"
            ) from exc
        payload = json.dumps(alert.to_dict(), default=str).encode()
        try:
            async with asyncio.timeout(self.timeout_s):
                _, stderr = await proc.communicate(payload)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise SinkError(
                f"command {self.name!r} did not finish within {self.timeout_s:g}s; killed"
            ) from None
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip()[-500:]
            raise SinkError(
                f"command {self.name!r} exited with {proc.returncode}"
                + (f": {tail}" if tail else "")
            )


def _env_value(text: str) -> str:
    """`text` as an environment variable can hold it, whatever a job's error contained.

    No NUL (exec refuses it), only encodable text (a lone surrogate is written as `\\udxxx`)
    and at most `ENV_VALUE_CHARS` characters (Linux refuses a variable over 128 KiB).
    """
    return head_of(storable(text.replace("\x00", "\\0")), ENV_VALUE_CHARS)
