"""Keep `agentcron run` alive as an OS service: systemd, Windows Task Scheduler, NSSM, launchd.

Each kind is a `ServiceManager` (see `base`) that plans files and argv commands; `apply_plan`
carries a plan out through one injected `CommandRunner`. `create_manager` picks the kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

from agentcron.service.base import (
    KINDS,
    CommandRunner,
    CompletedCommand,
    Kind,
    Plan,
    RecordingRunner,
    ServiceError,
    ServiceManager,
    ServiceSpec,
    ServiceStatus,
    SubprocessRunner,
    apply_plan,
)
from agentcron.service.launchd import LaunchdManager
from agentcron.service.nssm import NssmManager, find_nssm
from agentcron.service.systemd import SystemdManager
from agentcron.service.windows_task import WindowsTaskManager

__all__ = [
    "KINDS",
    "CommandRunner",
    "CompletedCommand",
    "HostInfo",
    "Kind",
    "LaunchdManager",
    "NssmManager",
    "Plan",
    "RecordingRunner",
    "ServiceError",
    "ServiceManager",
    "ServiceSpec",
    "ServiceStatus",
    "SubprocessRunner",
    "SystemdManager",
    "WindowsTaskManager",
    "apply_plan",
    "create_manager",
    "default_kind",
    "find_nssm",
    "supported_kinds",
]

_PLATFORM_KINDS: dict[str, tuple[Kind, ...]] = {
    "linux": ("systemd",),
    "win32": ("windows-task", "nssm"),
    "cygwin": ("windows-task", "nssm"),
    "darwin": ("launchd",),
}


def supported_kinds(platform: str) -> tuple[Kind, ...]:
    """The kinds that can be installed on `platform` (a `sys.platform` value)."""
    key = "linux" if platform.startswith("linux") else platform
    return _PLATFORM_KINDS.get(key, ())


def default_kind(platform: str) -> Kind:
    """The natural kind for `platform`: systemd, windows-task or launchd."""
    kinds = supported_kinds(platform)
    if not kinds:
        raise ServiceError(
            f"no service kind is supported on {platform!r}; pass --kind with --dry-run to "
            "preview one"
        )
    return kinds[0]


@dataclass(frozen=True)
class HostInfo:
    """What the managers need to know about the machine, injected for tests."""

    platform: str
    home: PurePath
    uid: int
    user: str
    which: Callable[[str], str | None]
    #: overrides for where unit / plist files go (tests); None = the OS default
    unit_dir: Path | None = None
    #: whether this process may write into a directory; None = `os.access`
    can_write: Callable[[Path], bool] | None = None


def create_manager(
    kind: Kind,
    spec: ServiceSpec,
    runner: CommandRunner,
    host: HostInfo,
    *,
    nssm: str | None = None,
) -> ServiceManager:
    """The manager of `kind` for `spec`; raises `ServiceError` for a missing NSSM."""
    if kind == "systemd":
        return SystemdManager(
            spec, runner, home=host.home, unit_dir=host.unit_dir, writable=host.can_write
        )
    if kind == "windows-task":
        return WindowsTaskManager(spec, runner, user=host.user)
    if kind == "nssm":
        return NssmManager(spec, runner, nssm=find_nssm(nssm, host.which))
    if kind == "launchd":
        return LaunchdManager(
            spec,
            runner,
            home=host.home,
            uid=host.uid,
            plist_dir=host.unit_dir,
            writable=host.can_write,
        )
    raise ServiceError(f"unknown service kind {kind!r}; choose one of {', '.join(KINDS)}")
