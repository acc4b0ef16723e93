from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentcron.heartbeat.watchdog import SystemdNotifier, Watchdog, should_ping, watchdog_interval
from agentcron.testing import VirtualClock


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> list[str]:
    out: list[str] = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_watchdog_interval_comes_from_watchdog_usec_for_this_pid_only() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 4.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}) == 4.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_a_ping_needs_progress_within_the_stall_window() -> None:
    assert should_ping(10.0, 11.9, 2.0)
    assert should_ping(10.0, 12.0, 2.0)
    assert not should_ping(10.0, 12.1, 2.0)
    assert not should_ping(None, 0.0, 2.0)


def test_without_notify_socket_nothing_is_built() -> None:
    assert SystemdNotifier.from_env({}) is None
    assert Watchdog.from_env(VirtualClock(), {"WATCHDOG_USEC": "1000000"}) is None


def test_messages_reach_a_real_unix_datagram_socket(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier(path)
    assert notifier.ready("starting")
    assert notifier.status("3 jobs")
    assert received(sock) == ["READY=1\nSTATUS=starting", "STATUS=3 jobs"]


def test_abstract_sockets_are_addressed_with_a_leading_at() -> None:
    name = f"agentcron-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        assert SystemdNotifier(f"@{name}").watchdog()
        assert received(sock) == ["WATCHDOG=1"]


def test_a_missing_socket_is_logged_not_raised(tmp_path: Path) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone.sock"))
    assert not notifier.watchdog()
    assert notifier.errors == 1


async def test_the_watchdog_pings_only_while_the_loop_makes_progress(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    clock = VirtualClock()
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}
    wd = Watchdog.from_env(clock, env, status=lambda: "ok")
    assert wd is not None and wd.interval_s == 2.0 and wd.stall_after_s == 1.0
    async with wd:
        assert received(sock) == ["READY=1\nSTATUS=ok"]
        for _ in range(4):  # the engine ticks every 0.5 s
            wd.progress()
            await clock.advance(0.5)
        assert received(sock) == ["WATCHDOG=1\nSTATUS=ok"] * 2

        await clock.advance(5)  # the loop is wedged: no progress marks
        assert received(sock) == []
        assert wd.withheld == 5

        wd.progress()  # it comes back
        await clock.advance(1)
        assert received(sock) == ["WATCHDOG=1\nSTATUS=ok"]
    assert received(sock) == ["STOPPING=1"]
