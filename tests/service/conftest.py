"""Fixtures of the service tests: typed specs under tmp_path and a host that is not this one."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path, PurePath, PureWindowsPath
from typing import Any

import pytest
from service_testlib import SpecFactory

from agentcron.service import RecordingRunner, ServiceSpec


@pytest.fixture
def make_spec(tmp_path: Path) -> SpecFactory:
    """Build a POSIX `ServiceSpec` whose paths live under tmp_path."""

    def build(**overrides: Any) -> ServiceSpec:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "working_dir": tmp_path,
            "python": PurePath(sys.executable),
            "account": getpass.getuser(),
        }
        values.update(overrides)
        return ServiceSpec(**values)

    return build


@pytest.fixture
def windows_spec() -> SpecFactory:
    """Build a `ServiceSpec` with Windows paths (rendering only; nothing is written)."""

    def build(**overrides: Any) -> ServiceSpec:
        values: dict[str, Any] = {
            "data_dir": PureWindowsPath(r"C:\Users\Alice\agent\data"),
            "working_dir": PureWindowsPath(r"C:\Users\Alice\agent"),
            "python": PureWindowsPath(r"C:\Program Files\Python311\python.exe"),
            "config_file": PureWindowsPath(r"C:\Users\Alice\agent\agentcron.toml"),
        }
        values.update(overrides)
        return ServiceSpec(**values)

    return build


@pytest.fixture
def runner() -> RecordingRunner:
    return RecordingRunner()
