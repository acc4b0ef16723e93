"""systemd notification and watchdog, without a dependency: datagrams to `NOTIFY_SOCKET`.

Under a `Type=notify` unit systemd sets `NOTIFY_SOCKET` (a path, or `@name` for an abstract
socket) and, with `WatchdogSec=`, `WATCHDOG_USEC` (and `WATCHDOG_PID`). `SystemdNotifier`
sends `READY=1`, `STATUS=...`, `WATCHDOG=1`, `STOPPING=1` there; outside systemd
`SystemdNotifier.from_env()` returns None and nothing is sent.

`Watchdog` pings only while the scheduler loop makes progress: the engine calls `progress()`
on every tick (and must tick at least every `stall_after_s`, by default half the watchdog
interval, even when idle). The watchdog task wakes every half interval and sends
`WATCHDOG=1` only when the last progress mark is at most `stall_after_s` old. A wedged loop
therefore stops the pings and systemd restarts the service after `WatchdogSec`; a blocked
event loop stops them too, since the watchdog task cannot run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from types import TracebackType

from agentcron.clock import Clock
from agentcron.tasks import cancel_and_wait

__all__ = ["SystemdNotifier", "Watchdog", "should_ping", "watchdog_interval"]

log = logging.getLogger("agentcron.heartbeat.watchdog")


def watchdog_interval(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds from `WATCHDOG_USEC`, or None when unset, invalid, or meant for another pid."""
    raw = environ.get("WATCHDOG_USEC", "").strip()
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not an integer", raw)
        return None
    if usec <= 0:
        return None
    target = environ.get("WATCHDOG_PID", "").strip()
    if target and target.isdigit() and int(target) != (os.getpid() if pid is None else pid):
        return None
    return usec / 1_000_000


def should_ping(last_progress: float | None, now: float, stall_after_s: float) -> bool:
    """True when the loop marked progress at most `stall_after_s` before `now` (monotonic)."""
    return last_progress is not None and now - last_progress <= stall_after_s


class SystemdNotifier:
    """Sends sd_notify messages as datagrams; never raises, never blocks."""

    def __init__(self, address: str) -> None:
        if not address:
            raise ValueError("NOTIFY_SOCKET is empty")
        self.address = address
        # "@name" is an abstract socket: a leading NUL byte on Linux.
        self._target: str | bytes = (
            b"\0" + address[1:].encode() if address.startswith("@") else address
        )
        self.sent = 0
        self.errors = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier | None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if not address or not hasattr(socket, "AF_UNIX"):
            return None
        return cls(address)

    def notify(self, *messages: str) -> bool:
        """Send `KEY=value` lines in one datagram; False (logged) when it could not be sent."""
        payload = "\n".join(m.replace("\n", " ") for m in messages).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto(payload, self._target)
        except OSError as exc:
            self.errors += 1
            log.warning("systemd notify to %s failed: %s", self.address, exc)
            return False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")


class Watchdog:
    """Pings the systemd watchdog while `progress()` keeps being called.

    `async with Watchdog(clock, notifier, interval_s) as wd:` sends `READY=1` (with
    `status()`'s text, if given) and starts the ping task; exit sends `STOPPING=1`.
    `status` is an optional callable giving the text for `STATUS=` on each ping.
    Build one from the environment with `Watchdog.from_env(clock)` (None outside systemd).
    """

    def __init__(
        self,
        clock: Clock,
        notifier: SystemdNotifier,
        interval_s: float | None,
        *,
        stall_after_s: float | None = None,
        status: Callable[[], str] | None = None,
    ) -> None:
        if interval_s is not None and interval_s <= 0:
            raise ValueError(f"watchdog interval must be positive, got {interval_s}")
        self.clock = clock
        self.notifier = notifier
        self.interval_s = interval_s
        self.stall_after_s = stall_after_s or (interval_s / 2 if interval_s else None)
        self.status = status
        self.last_progress: float | None = None
        self.pings = 0
        self.withheld = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(
        cls,
        clock: Clock,
        environ: Mapping[str, str] | None = None,
        *,
        status: Callable[[], str] | None = None,
    ) -> Watchdog | None:
        env = os.environ if environ is None else environ
        notifier = SystemdNotifier.from_env(env)
        if notifier is None:
            return None
        return cls(clock, notifier, watchdog_interval(env), status=status)

    def progress(self) -> None:
        """Mark that the scheduler loop made progress (call once per tick; cheap)."""
        self.last_progress = self.clock.monotonic()

    def tick(self) -> bool:
        """One watchdog decision: ping if the loop made progress recently."""
        if self.stall_after_s is None:
            return False
        now = self.clock.monotonic()
        if not should_ping(self.last_progress, now, self.stall_after_s):
            self.withheld += 1
            if self.withheld == 1 or self.withheld % 10 == 0:
                log.error(
                    "scheduler loop made no progress for %.1fs; withholding WATCHDOG=1",
                    now - self.last_progress if self.last_progress is not None else float("nan"),
                )
            return False
        self.withheld = 0
        messages = ["WATCHDOG=1"]
        if self.status is not None:
            try:
                messages.append(f"STATUS={self.status()}")
            except Exception:
                log.exception("watchdog status callback failed")
        if self.notifier.notify(*messages):
            self.pings += 1
            return True
        return False

    async def run(self) -> None:
        assert self.interval_s is not None
        while True:
            await self.clock.sleep(self.interval_s / 2)
            self.tick()

    async def __aenter__(self) -> Watchdog:
        self.progress()
        text = None
        if self.status is not None:
            with contextlib.suppress(Exception):
                text = self.status()
        self.notifier.ready(text)
        if self.interval_s is not None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="agentcron-systemd-watchdog"
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        self.notifier.stopping()
