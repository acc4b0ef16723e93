"""`agentcron dashboard`: serve the web dashboard for an existing store.

    agentcron dashboard [--host 127.0.0.1] [--port 3000] [--data-dir DIR | --store URL]
                        [--queue NAME ...] [--poll SECONDS]

It observes the store that `agentcron run` schedules (read-only: it never fires jobs) and
stays live by polling it. The token is `DASHBOARD_AUTH_TOKEN`, or the one generated into
`<data dir>/dashboard.token` at first start (printed once). FastAPI and uvicorn are imported
only when the command runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer

from agentcron.cli.common import cli_settings, fail, sqlite_path

__all__ = ["dashboard"]


def dashboard(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind (default: $DASHBOARD_HOST or 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port (default: $DASHBOARD_PORT or 3000)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data directory (default: $SCHEDULER_DATA_DIR or ./data)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Store URL (default: sqlite:///<data dir>/scheduler.db)."),
    ] = None,
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue", help="A queue to show (repeatable); queues that jobs use are shown anyway."
        ),
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", min=0.2, help="Seconds between reads of the store.")
    ] = 2.0,
) -> None:
    """Serve the web dashboard for an existing store (read-only, on 127.0.0.1 by default)."""
    # As every command: the flags, then the environment, then .env (a bad --host is refused
    # here, naming it, before anything is written or printed).
    settings = cli_settings(data_dir=data_dir, store=store, host=host, port=port)
    configured = settings.DASHBOARD_AUTH_TOKEN
    token_text = configured.get_secret_value() if configured is not None else None
    url = settings.store_url
    database = sqlite_path(url)
    if database is not None and not database.is_file():
        # It observes an existing store: a mistyped --data-dir must not create a directory,
        # an empty database and a token, then serve an empty view.
        fail(
            f"no database at {database}; pass --data-dir or --store where agentcron keeps its data"
        )
    try:
        asyncio.run(
            _serve(
                url=url,
                data_dir=settings.data_dir,
                host=settings.DASHBOARD_HOST,
                port=settings.DASHBOARD_PORT,
                configured_token=token_text,
                queues=queue or [],
                poll_s=poll,
            )
        )
    except (OSError, ValueError) as exc:
        fail(str(exc))


async def _serve(
    *,
    url: str,
    data_dir: Path,
    host: str,
    port: int,
    configured_token: str | None,
    queues: list[str],
    poll_s: float,
) -> None:
    from agentcron.dashboard import DashboardSettings, ensure_token
    from agentcron.dashboard.observer import StoreObserver
    from agentcron.dashboard.queues import QueueSet
    from agentcron.dashboard.server import DashboardServer, exposure_warning
    from agentcron.store.base import StoreError, open_store

    # Read-only: it must not wait for (or take) the write lock `agentcron run` holds. Opened
    # first: a database it cannot read is refused before a token is written for it.
    observer = StoreObserver(open_store(url, read_only=True), poll_s=poll_s)
    try:
        await observer.__aenter__()
    except StoreError as exc:
        raise ValueError(str(exc)) from None
    try:
        token, generated = ensure_token(data_dir, configured_token)
    except BaseException:
        await observer.__aexit__(None, None, None)
        raise
    if generated:
        typer.echo(f"dashboard token (generated, saved in {data_dir / 'dashboard.token'}):")
        typer.echo(f"  {token}")
    queue_url = url if url.startswith(("sqlite:", "redis:", "rediss:")) else "memory://"
    queue_set = QueueSet(queue_url, queues, scheduler=observer)
    settings = DashboardSettings(auth_token=token, host=host, port=port, data_dir=data_dir)
    server = DashboardServer(observer, settings, queues=queue_set)
    try:
        await server.start()
        # Only once it listens: an address it cannot bind is an error, not an exposure.
        if exposure_warning(host, token_configured=configured_token is not None):
            typer.secho(_read_only_exposure(host), err=True, fg=typer.colors.RED, bold=True)
        typer.echo(f"agentcron dashboard on {server.url} (read-only view of {observer.store.url})")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        waiter = asyncio.create_task(server.wait())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, stopper):
            task.cancel()
    finally:
        await server.stop()
        await queue_set.close()
        await observer.__aexit__(None, None, None)


def _read_only_exposure(host: str) -> str:
    """The warning for this read-only dashboard bound beyond loopback without a configured
    token (`exposure_warning` of `agentcron run` speaks of running and changing jobs,
    which this one cannot)."""
    return (
        f"WARNING: the dashboard listens on {host}, reachable from other machines, and "
        "DASHBOARD_AUTH_TOKEN is not set: anyone who reads the generated token (printed "
        "above, stored in the data dir) can see every job, its runs and their output. Set "
        "DASHBOARD_AUTH_TOKEN, bind 127.0.0.1 (the default), and put TLS in front (the "
        "dashboard speaks plain HTTP)."
    )
