"""`HeartbeatSender`: this process tells the store, every interval, that it is alive.

Each beat is a `NodeHeartbeat` (node id, sequence, wall-clock timestamp, version, platform,
pid, host, status from `probes.assess`, the readings in `details`) written with
`store.write_heartbeat`, so any process that can open the store can watch this node
(`HeartbeatMonitor`). A failing write is logged and retried at the next beat; the sender
never raises into the engine.

The node id is stable per host and data directory: it lives in `<data dir>/node-id`
(created on first use) together with the host name; a data directory copied to another host
gets a new id there. Pass `node_id=` to override.

With `events=` and `disk_path=` (the data directory), a beat that finds the disk at or above
`Thresholds.disk_degraded_pct` also publishes `disk.low` for the alert rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import platform
import socket
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType

from agentcron import __version__
from agentcron.clock import Clock
from agentcron.events import DiskSpaceLow, EventBus
from agentcron.heartbeat.probes import Assessment, LoopLagProbe, Probes, Thresholds, assess
from agentcron.models import NODE_STOPPED, NodeHeartbeat
from agentcron.store.base import Store
from agentcron.tasks import cancel_and_wait

__all__ = [
    "DEFAULT_INTERVAL_S",
    "MIN_INTERVAL_S",
    "NODE_ID_FILE",
    "HeartbeatSender",
    "interval_from_env",
    "read_node_id",
    "resolve_node_id",
]

log = logging.getLogger("agentcron.heartbeat.sender")

#: `HEARTBEAT_INTERVAL` default of the spec: 30 000 ms.
DEFAULT_INTERVAL_S = 30.0
NODE_ID_FILE = "node-id"
#: The shortest heartbeat interval: at 1 ms a node spun at ~580 % CPU writing heartbeats.
MIN_INTERVAL_S = 0.1


def interval_from_env(environ: Mapping[str, str] | None = None) -> float:
    """`HEARTBEAT_INTERVAL` (milliseconds, as in the spec) in seconds; ValueError naming it."""
    env = os.environ if environ is None else environ
    raw = env.get("HEARTBEAT_INTERVAL")
    if raw is None or raw.strip() == "":
        return DEFAULT_INTERVAL_S
    try:
        ms = float(raw)
    except ValueError:
        raise ValueError(f"HEARTBEAT_INTERVAL: {raw!r} is not a number of milliseconds") from None
    if not MIN_INTERVAL_S * 1000 <= ms < math.inf:  # NaN too
        raise ValueError(
            f"HEARTBEAT_INTERVAL: must be at least {MIN_INTERVAL_S * 1000:g} milliseconds,"
            f" got {raw!r}"
        )
    return ms / 1000.0


def _host() -> str:
    return socket.gethostname() or "localhost"


def read_node_id(data_dir: str | os.PathLike[str]) -> str | None:
    """The node id stored in `data_dir` for this host, or None (never creates one)."""
    path = Path(data_dir) / NODE_ID_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("host") != _host():
        return None
    node_id = data.get("node_id")
    return node_id if isinstance(node_id, str) and node_id else None


def resolve_node_id(data_dir: str | os.PathLike[str] | None, override: str | None = None) -> str:
    """`override`, else the id stored in `data_dir` for this host, else a new one (stored).

    A new id is `<host>-<8 hex>`; it is written atomically so that two processes starting
    together on one data directory agree (the first rename wins, the other re-reads).
    """
    if override:
        return override
    if data_dir is None:
        return f"{_host()}-{uuid.uuid4().hex[:8]}"
    existing = read_node_id(data_dir)
    if existing is not None:
        return existing
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    node_id = f"{_host()}-{uuid.uuid4().hex[:8]}"
    tmp = directory / f".{NODE_ID_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"host": _host(), "node_id": node_id}), encoding="utf-8")
    target = directory / NODE_ID_FILE
    try:
        # link() fails if another process created the file first: keep theirs.
        os.link(tmp, target)
    except FileExistsError:
        pass
    except OSError:
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return read_node_id(data_dir) or node_id


class HeartbeatSender:
    """Writes this node's heartbeat every `interval_s` seconds of the injected clock.

    `async with HeartbeatSender(...) as sender:` starts a `LoopLagProbe`, writes the first
    beat before the block starts, then beats in a loop (a named task); on exit it stops
    both. `beat()` does one beat.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        node_id: str,
        interval_s: float = DEFAULT_INTERVAL_S,
        probes: Probes | None = None,
        thresholds: Thresholds | None = None,
        events: EventBus | None = None,
        version: str = __version__,
        loop_lag_period_s: float | None = 0.5,
        disk_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not 0 < interval_s < math.inf:
            raise ValueError(f"heartbeat interval must be positive, got {interval_s}")
        self.store = store
        self.clock = clock
        self.node_id = node_id
        self.interval_s = interval_s
        self.thresholds = thresholds or Thresholds()
        self.events = events
        self.version = version
        self.loop_lag: LoopLagProbe | None = None
        if probes is None:
            if loop_lag_period_s:
                self.loop_lag = LoopLagProbe(clock, period_s=loop_lag_period_s)
            probes = Probes(store, loop_lag=self.loop_lag, disk_path=disk_path)
        elif probes.loop_lag is not None:
            self.loop_lag = probes.loop_lag
        self.probes = probes
        self.sequence = 0
        self.started_at: datetime | None = None
        self.last: NodeHeartbeat | None = None
        self.last_assessment: Assessment | None = None
        self.failures = 0
        self._host = _host()
        self._platform = f"{platform.system()}-{platform.release()}-{platform.machine()}".lower()
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> NodeHeartbeat:
        """Probe, assess, write one heartbeat; returns it (written or not)."""
        now = self.clock.now()
        if self.started_at is None:
            self.started_at = now
        readings = await self.probes.read()
        assessment = assess(readings, self.thresholds)
        self.sequence += 1
        details = readings.to_dict()
        details["reasons"] = list(assessment.reasons)
        heartbeat = NodeHeartbeat(
            node_id=self.node_id,
            sequence=self.sequence,
            sent_at=now,
            status=assessment.status,
            host=self._host,
            pid=os.getpid(),
            version=self.version,
            platform=self._platform,
            started_at=self.started_at,
            interval_s=self.interval_s,
            details=details,
        )
        if self.last_assessment is None or self.last_assessment.status != assessment.status:
            log.log(
                logging.INFO if assessment.status == "healthy" else logging.WARNING,
                "node %s is %s%s",
                self.node_id,
                assessment.status,
                f": {'; '.join(assessment.reasons)}" if assessment.reasons else "",
                extra={"event": "heartbeat.status", "node_id": self.node_id},
            )
        self.last_assessment = assessment
        self._report_disk(readings.disk_pct, readings.disk_free_mb, now)
        try:
            await self.store.write_heartbeat(heartbeat)
        except Exception as exc:
            self.failures += 1
            log.warning("heartbeat %d of %s not written: %s", self.sequence, self.node_id, exc)
        self.last = heartbeat
        return heartbeat

    def _report_disk(self, used_pct: float | None, free_mb: float | None, now: datetime) -> None:
        limit = self.thresholds.disk_degraded_pct
        if self.events is None or used_pct is None or limit is None or used_pct < limit:
            return
        # Published on every beat while full; alert cooldowns turn it into one alert.
        self.events.publish(
            DiskSpaceLow(
                at=now,
                path=self.probes.disk_path or "",
                used_pct=used_pct,
                free_mb=free_mb,
                node_id=self.node_id,
            )
        )

    async def run(self) -> None:
        """Beat every `interval_s` (measured from each beat's start) until cancelled."""
        start = self.clock.monotonic()
        await self._beat_logged()
        await self._beat_after_first(start)

    async def _beat_after_first(self, start: float) -> None:
        while True:
            await self.clock.sleep(self.interval_s - (self.clock.monotonic() - start))
            start = self.clock.monotonic()
            await self._beat_logged()

    async def _beat_logged(self) -> None:
        try:
            await self.beat()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("heartbeat failed")

    async def __aenter__(self) -> HeartbeatSender:
        if self.loop_lag is not None:
            await self.loop_lag.__aenter__()
        # The first beat is written before we return: a monitor started after the sender
        # (the supervisor's, or one in another process) must not judge this node by the
        # heartbeat its previous run left behind (a false "offline" alert at each restart).
        try:
            start = self.clock.monotonic()
            await self._beat_logged()
        except BaseException:
            if self.loop_lag is not None:
                await self.loop_lag.__aexit__(None, None, None)
            raise
        self._task = asyncio.get_running_loop().create_task(
            self._beat_after_first(start), name="agentcron-heartbeat"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop beating, and write a last heartbeat saying `stopped`: monitors and
        `agentcron health` then know at once that the node is gone, instead of after the
        beats it misses (three intervals: 90 s by default)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self.loop_lag is not None:
            await self.loop_lag.__aexit__(None, None, None)
        if task is not None and self.last is not None:
            await self._write_stopped(self.last)

    async def _write_stopped(self, last: NodeHeartbeat) -> None:
        self.sequence += 1
        stopped = replace(
            last,
            sequence=self.sequence,
            sent_at=self.clock.now(),
            status=NODE_STOPPED,
            details={**last.details, "reasons": ["stopped"]},
        )
        try:
            await self.store.write_heartbeat(stopped)
        except Exception as exc:  # it will be judged offline once its beats are missed
            log.warning("last heartbeat of %s not written: %s", self.node_id, exc)
        else:
            self.last = stopped
