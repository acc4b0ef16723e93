"""`DashboardServer`: the dashboard served by uvicorn inside the caller's event loop.

It runs in the same loop as the scheduler (the event bus is not thread-safe) and leaves
signal handling to its host (`agentcron run` or `agentcron dashboard`)::

    token, generated = ensure_token(data_dir, configured_token)
    settings = DashboardSettings(auth_token=token, host="127.0.0.1", port=3000)
    async with sched, DashboardServer(sched, settings, queues=QueueSet(url, scheduler=sched)):
        await sched.serve()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Generator
from types import TracebackType

import uvicorn

from agentcron.dashboard.api import DashboardContext
from agentcron.dashboard.app import create_app
from agentcron.dashboard.auth import is_loopback
from agentcron.dashboard.protocol import QueueSource, SchedulerLike
from agentcron.dashboard.settings import DashboardSettings
from agentcron.tasks import join

__all__ = ["DashboardServer", "exposure_warning"]

log = logging.getLogger("agentcron.dashboard")


def exposure_warning(host: str, token_configured: bool) -> str | None:
    """The loud warning for binding beyond loopback without a configured token (else None)."""
    if is_loopback(host) or token_configured:
        return None
    return (
        f"WARNING: the dashboard listens on {host}, reachable from other machines, and "
        "DASHBOARD_AUTH_TOKEN is not set: anyone who reads the generated token (printed "
        "above, stored in the data dir) can run and change jobs. Set DASHBOARD_AUTH_TOKEN, "
        "bind 127.0.0.1 (the default), and put TLS in front (the dashboard speaks plain HTTP)."
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The host process owns SIGINT/SIGTERM and stops us through `stop()`.
        yield


class DashboardServer:
    """Start with `await start()` (or `async with`), stop with `await stop()`."""

    def __init__(
        self,
        scheduler: SchedulerLike,
        settings: DashboardSettings,
        *,
        queues: QueueSource | None = None,
    ) -> None:
        self.settings = settings
        self.app = create_app(scheduler, settings, queues=queues)
        self._context: DashboardContext = self.app.state.dashboard
        config = uvicorn.Config(
            self.app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            lifespan="on",
            ws="websockets-sansio",
            # Compressing every frame for every client would cost the engine's loop more
            # than the fan-out itself; the dashboard is usually on loopback or a LAN.
            ws_per_message_deflate=False,
            server_header=False,
            proxy_headers=False,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None
        self.port = settings.port

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/"

    def _bind(self) -> socket.socket:
        # Bound here rather than by uvicorn, which calls sys.exit() on a bind error.
        host = self.settings.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP; without it every response waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if sys.platform != "win32":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, self.settings.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"the dashboard cannot listen on {host}:{self.settings.port}: "
                f"{exc.strerror or exc} (is the port in use? set DASHBOARD_PORT or --port)",
            ) from None  # fmt: skip
        self.port = int(sock.getsockname()[1])
        return sock

    async def start(self) -> None:
        """Bind and serve; raises `OSError` (with a message) when the port cannot be bound."""
        sock = self._bind()
        self._context.closing.clear()
        self._task = asyncio.create_task(
            self._server.serve(sockets=[sock]), name="agentcron-dashboard"
        )
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError(f"the dashboard stopped while starting on {self.url}")
            await asyncio.sleep(0.01)
        log.info("dashboard listening on %s", self.url)

    async def stop(self) -> None:
        """Stop serving. Requests in progress are answered first; a change still waiting for
        the store answers its 503 at once instead of after `api.SAVE_WAIT_S`."""
        if self._task is None:
            return
        self._context.closing.set()
        self._server.should_exit = True
        await join(self._task)  # (a cancellation of `stop()` itself propagates)
        self._task = None

    async def wait(self) -> None:
        """Until the server stops (for `agentcron dashboard`)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aenter__(self) -> DashboardServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
