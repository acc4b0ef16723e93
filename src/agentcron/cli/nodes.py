"""`agentcron nodes` and `agentcron health`: which nodes are alive, and is this one healthy.

    agentcron nodes [--json] [--data-dir DIR | --store URL]
    agentcron health [--json] [--data-dir DIR | --store URL] [--node-id ID]

Both read the heartbeats from the store, so they work from any process or machine that can
open it. `health` is meant as a container / OS health probe: exit 0 when this node's last
heartbeat is recent (online, or suspect: one beat late) and not `unhealthy`; exit 1 when it
is offline, reports itself unhealthy, never sent a heartbeat, or its store cannot be read
(unreachable Redis, missing database); exit 2 only for bad usage (bad flags, a malformed
--store URL).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from agentcron.cli.common import (
    cli_settings,
    data_dir_option,
    fail,
    print_json,
    resolve_store,
    sqlite_path,
    store_option,
    visible,
)
from agentcron.heartbeat.monitor import DEFAULT_MISSED_THRESHOLD, NodeView, view_node
from agentcron.heartbeat.sender import read_node_id
from agentcron.models import NODE_STOPPED, NodeHeartbeat
from agentcron.store.base import StoreError, open_store

__all__ = ["health_command", "is_healthy", "nodes_command"]

EXIT_UNHEALTHY = 1
_DATA_DIR = data_dir_option()
_STORE = store_option()


async def _read_heartbeats(url: str) -> list[NodeHeartbeat]:
    # Read-only: a probe must answer while `agentcron run` holds the write lock (a VACUUM,
    # a long prune), not wait `busy_timeout_s` for it and then report a locked database.
    store = open_store(url, read_only=True)
    await store.open()
    try:
        return await store.list_heartbeats()
    finally:
        await store.close()


def _load(url: str) -> list[NodeHeartbeat]:
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            fail(
                f"no database at {path}; pass --data-dir or --store where `agentcron run` keeps it"
            )
    try:
        return asyncio.run(_read_heartbeats(url))
    except (StoreError, ValueError, OSError) as exc:
        fail(str(exc))


class _Unreadable(Exception):
    """`health` could not read the heartbeats (the store is unreachable or missing)."""


def _read_for_health(url: str) -> list[NodeHeartbeat]:
    """The heartbeats, for `health`: a malformed URL is bad usage (one line, exit 2); a
    store that cannot be read raises `_Unreadable` (the node is then unhealthy, exit 1)."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise _Unreadable(f"no database at {path}")
    try:
        open_store(url, read_only=True)  # only checks the URL: connects nowhere
    except ValueError as exc:
        fail(str(exc))
    try:
        return asyncio.run(_read_heartbeats(url))
    except (StoreError, ValueError, OSError) as exc:
        raise _Unreadable(str(exc)) from None


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def is_healthy(view: NodeView | None) -> bool:
    """The `agentcron health` verdict (see the module docstring)."""
    return view is not None and view.status != "offline" and view.reported != "unhealthy"


def nodes_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
    missed_threshold: int = typer.Option(
        DEFAULT_MISSED_THRESHOLD, "--missed-threshold", min=1, help="Missed beats until offline."
    ),
) -> None:
    """List the nodes that sent heartbeats: online, suspect or offline, with a health score."""
    _, url = resolve_store(data_dir, store)
    now = datetime.now(UTC)
    views = []
    for hb in _load(url):
        try:
            views.append(view_node(hb, now, missed_threshold=missed_threshold))
        except ValueError as exc:  # a malformed row from another node, as the monitor does
            typer.echo(visible(f"agentcron: ignoring node {hb.node_id}: {exc}"), err=True)
    if as_json:
        print_json([v.to_dict() for v in views])
        return
    if not views:
        typer.echo("no nodes have sent a heartbeat")
        return
    rows = [("NODE", "HOST", "PID", "STATUS", "SCORE", "REPORTED", "LAST SEEN", "VERSION")]
    rows += [
        (
            visible(v.node_id),  # heartbeats come from other machines: no terminal escapes
            visible(v.host),
            str(v.pid),
            v.status,
            str(v.health_score),
            visible(v.reported),
            _ago((now - v.last_seen).total_seconds()),
            visible(v.version),
        )
        for v in views
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def health_command(
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
    data_dir: Path | None = _DATA_DIR,
    store: str | None = _STORE,
    node_id: str | None = typer.Option(
        None, "--node-id", help="Node to check (default: this host's node in the data dir)."
    ),
) -> None:
    """Exit 0 when this node is healthy, 1 when it is not (a health probe for containers/OSes)."""
    settings = cli_settings(data_dir=data_dir, store=store)
    directory = settings.data_dir
    node = node_id or settings.SCHEDULER_NODE_ID or read_node_id(directory)
    if node is None:
        message = f"no node id in {directory / 'node-id'}: has `agentcron run` started here?"
        if as_json:
            print_json({"healthy": False, "node_id": None, "reason": message})
        else:
            typer.echo(f"unhealthy: {message}")
        raise typer.Exit(EXIT_UNHEALTHY)
    now = datetime.now(UTC)
    try:
        beats = _read_for_health(settings.store_url)
    except _Unreadable as exc:  # an unreachable or missing store: a verdict, not bad usage
        message = f"cannot read heartbeats: {exc}"
        if as_json:
            print_json({"healthy": False, "node_id": node, "reason": message})
        else:
            typer.echo(visible(f"unhealthy: {' '.join(message.split())}"))
        raise typer.Exit(EXIT_UNHEALTHY) from None
    beat = next((hb for hb in beats if hb.node_id == node), None)
    malformed = None
    try:
        view = view_node(beat, now) if beat is not None else None
    except ValueError as exc:
        view, malformed = None, f"malformed heartbeat: {exc}"
    healthy = is_healthy(view)
    if malformed is not None:
        reason = malformed
    elif view is None:
        reason = "no heartbeat from this node"
    elif view.reported == NODE_STOPPED:
        reason = f"stopped {_ago((now - view.last_seen).total_seconds())}"
    elif view.status == "offline":
        reason = f"offline: last heartbeat {_ago((now - view.last_seen).total_seconds())}"
    else:
        reasons = view.details.get("reasons") or []
        reason = f"{view.status}, reports {view.reported}" + (
            f": {'; '.join(str(r) for r in reasons)}" if reasons else ""
        )
    if as_json:
        out: dict[str, Any] = {"healthy": healthy, "node_id": node, "reason": reason}
        if view is not None:
            out["node"] = view.to_dict()
        print_json(out)
    else:
        score = f" (score {view.health_score})" if view is not None else ""
        verdict = "healthy" if healthy else "unhealthy"
        typer.echo(visible(f"{verdict}: node {node} {reason}{score}"))
    raise typer.Exit(0 if healthy else EXIT_UNHEALTHY)
