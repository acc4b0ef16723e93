"""Helpers shared by the service tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from agentcron.service import HostInfo, ServiceSpec

#: strings that a shell or cmd.exe would interpret; each must stay one argv element
HOSTILE = "a b \"q\" 's' & ; $(touch x) `id` | > % ^ ü 日本"

SpecFactory = Callable[..., ServiceSpec]


def host_for(platform: str, tmp_path: Path, *, nssm: str | None = None) -> HostInfo:
    """A host on `platform` whose home and unit directory are under tmp_path."""
    return HostInfo(
        platform=platform,
        home=tmp_path / "home",
        uid=501,
        user="DESKTOP\\alice" if platform == "win32" else "alice",
        which=lambda name: nssm if nssm and name.startswith("nssm") else None,
        unit_dir=tmp_path / "units",
    )


def systemd_analyze(*args: str, runtime_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run the real `systemd-analyze` (no running systemd needed; TZ pinned to UTC).

    `XDG_RUNTIME_DIR` lets `verify --user` build its manager without a user session.
    """
    binary = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
    runtime_dir.mkdir(exist_ok=True)
    env = {**os.environ, "TZ": "UTC", "LC_ALL": "C", "XDG_RUNTIME_DIR": str(runtime_dir)}
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, env=env, check=False, timeout=60
    )


def verify_units(paths: list[Path], runtime_dir: Path, *, user: bool = False) -> str:
    """`systemd-analyze verify` the unit files; return its complaints ("" when clean)."""
    scope = ["--user"] if user else []
    done = systemd_analyze(
        "verify",
        "--man=no",
        "--recursive-errors=no",
        *scope,
        *map(str, paths),
        runtime_dir=runtime_dir,
    )
    return (
        f"exit {done.returncode}: {done.stdout}{done.stderr}"
        if (done.returncode or done.stderr.strip())
        else ""
    )
