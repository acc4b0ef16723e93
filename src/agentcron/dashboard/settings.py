"""`DashboardSettings`: everything `create_app` and `agentcron dashboard` are configured with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DashboardSettings"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSettings:
    """Plain values; the CLI and `agentcron run` fill them from `DASHBOARD_*` settings.

    `auth_token` is required by `create_app`: resolve it first with
    `agentcron.dashboard.auth.ensure_token(data_dir, configured)`.
    """

    auth_token: str
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path | None = None
    #: Events buffered per WebSocket client before that client is dropped as too slow.
    ws_max_pending: int = 1_000
    #: Seconds a new WebSocket has to send its auth message.
    ws_auth_timeout_s: float = 5.0
    #: Seconds one WebSocket send may take before the client is dropped.
    ws_send_timeout_s: float = 5.0
    #: Seconds a client's events gather before they are sent as one frame.
    ws_flush_interval_s: float = 0.1
    #: Largest page size accepted by list routes.
    max_page_size: int = 500
    #: Largest request body in bytes; a bigger one (even streamed) is refused with 413.
    max_body_bytes: int = 1024 * 1024
    #: Extra `Content-Security-Policy` sources for `connect-src` (rarely needed).
    extra_connect_src: tuple[str, ...] = field(default_factory=tuple)
