"""Hostile values that used to reach a generated file or crash instead of a one-line refusal."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path, PurePath

import pytest
from service_testlib import SpecFactory, host_for
from typer.testing import CliRunner

from agentcron.cli import service as service_cli
from agentcron.service import RecordingRunner, ServiceError
from agentcron.service.timers import TimerJob, export_timers

PYTHON = PurePath("/opt/agent/.venv/bin/python")
#: what Python makes of a non-UTF-8 byte in a POSIX path or argv (surrogateescape)
NOT_UTF8 = os.fsdecode(b"/srv/agent-\xff")


def _cli_env(tmp_path: Path, platform: str = "linux") -> service_cli.ServiceCliEnv:
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    host = replace(host_for(platform, tmp_path), can_write=lambda _: True)
    return service_cli.ServiceCliEnv(host, RecordingRunner(), cwd, PYTHON, {})


@pytest.mark.parametrize("kind", ["systemd", "launchd", "windows-task", "nssm"])
def test_an_account_with_control_characters_is_refused_in_one_line_for_every_kind(
    tmp_path: Path, kind: str
) -> None:
    result = CliRunner().invoke(
        service_cli.app,
        ["show", "--kind", kind, "--account", "bob\x01", "--run-as-system"]
        if kind == "nssm"
        else ["show", "--kind", kind, "--account", "bob\x01"],
        obj=_cli_env(tmp_path),
    )
    assert result.exit_code == 2, result.output
    assert "control characters" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_description_with_control_characters_is_refused(make_spec: SpecFactory) -> None:
    with pytest.raises(ServiceError, match="control characters"):
        make_spec(description="agent\x0bcron")


@pytest.mark.parametrize("field", ["data_dir", "working_dir", "python"])
def test_a_path_that_is_not_valid_utf8_is_refused_before_any_file_is_generated(
    make_spec: SpecFactory, field: str
) -> None:
    with pytest.raises(ServiceError, match="UTF-8"):
        make_spec(**{field: PurePath(NOT_UTF8)})


def test_an_environment_value_that_is_not_valid_utf8_is_refused(make_spec: SpecFactory) -> None:
    with pytest.raises(ServiceError, match="UTF-8"):
        make_spec(environment={"TOKEN": os.fsdecode(b"\xfe\xff")})


def test_the_cli_refuses_a_non_utf8_data_dir_with_exit_2_instead_of_a_traceback(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        service_cli.app,
        ["install", "--dry-run", "--kind", "systemd", "--account", "alice", "--data-dir", NOT_UTF8],
        obj=_cli_env(tmp_path),
    )
    assert result.exit_code == 2, result.output
    assert "UTF-8" in result.output


def test_an_exported_timer_runs_a_job_whose_id_starts_with_a_dash_as_the_id_not_an_option(
    tmp_path: Path,
) -> None:
    export = export_timers(
        [TimerJob("-x", "0 2 * * *")],
        tmp_path,
        python=PurePath("/usr/bin/python3"),
        data_dir=PurePath("/srv/data"),
    )
    (service,) = [f.content for f in export.plan.files if str(f.path).endswith(".service")]
    assert (
        "ExecStart=/usr/bin/python3 -m agentcron jobs run --data-dir /srv/data -- -x\n" in service
    )
