"""The web dashboard and HTTP API (FastAPI). Imported only when served, never by
`import agentcron`.

    from agentcron.dashboard import DashboardSettings, create_app, ensure_token
    token, generated = ensure_token(data_dir, configured=None)
    app = create_app(scheduler, DashboardSettings(auth_token=token))
"""

from __future__ import annotations

from agentcron.dashboard.app import create_app
from agentcron.dashboard.auth import ensure_token
from agentcron.dashboard.protocol import QueueLike, QueueSource, SchedulerLike
from agentcron.dashboard.settings import DashboardSettings

__all__ = [
    "DashboardSettings",
    "QueueLike",
    "QueueSource",
    "SchedulerLike",
    "create_app",
    "ensure_token",
]
