"""QA pass s26 of the service layer: WINDOWS_TASK_* settings, the watchdog bound, the NSSM dry
run, /tmp paths and PrivateTmp, `%VAR%` and reserved device names in Windows tasks."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path, PurePath, PureWindowsPath

import pytest
from service_testlib import SpecFactory, host_for, verify_units
from typer.testing import CliRunner, Result

from agentcron.cli import service as service_cli
from agentcron.service import (
    CompletedCommand,
    NssmManager,
    RecordingRunner,
    ServiceError,
    ServiceSpec,
    WindowsTaskManager,
)
from agentcron.service.systemd import render_unit
from agentcron.service.windows_task import render_task_xml

PYTHON = PurePath("/opt/agent/.venv/bin/python")
NSSM = "C:\\tools\\nssm.exe"
USER = "DESKTOP\\alice"
# Linux only; there `scripts/install-system-deps` installs systemd-analyze, and a missing one
# fails the test (as the other unit checks do) instead of skipping it.
has_systemd_analyze = pytest.mark.skipif(sys.platform != "linux", reason="systemd is Linux's")


def _env(
    tmp_path: Path,
    platform: str = "linux",
    *,
    environ: dict[str, str] | None = None,
    runner: RecordingRunner | None = None,
    nssm: str | None = None,
) -> service_cli.ServiceCliEnv:
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    host = replace(host_for(platform, tmp_path, nssm=nssm), can_write=lambda _: True)
    return service_cli.ServiceCliEnv(
        host, runner or RecordingRunner(), cwd, PYTHON, dict(environ or {})
    )


def _invoke(env: service_cli.ServiceCliEnv, *args: str) -> Result:
    return CliRunner().invoke(service_cli.app, list(args), obj=env)


def _refused(result: Result, *needles: str) -> None:
    """Exit 2, one line on stderr starting with `agentcron: `, containing every needle."""
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("agentcron: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.output


# --------------------------------------------------------------- 1. WINDOWS_TASK_NAME/ENABLED


def test_windows_task_name_names_the_task_and_its_xml_file(tmp_path: Path) -> None:
    env = _env(tmp_path, environ={"WINDOWS_TASK_NAME": "mytask"})
    result = _invoke(env, "install", "--dry-run", "--json", "--kind", "windows-task")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert Path(body["files"][0]["path"]).name == "mytask.task.xml"
    assert "<URI>\\agentcron\\mytask</URI>" in body["files"][0]["content"]
    assert body["commands"][0][:4] == ["schtasks", "/Create", "/TN", "\\agentcron\\mytask"]
    assert body["commands"][1] == ["schtasks", "/Run", "/TN", "\\agentcron\\mytask"]


def test_windows_task_name_is_read_from_the_env_file_of_the_directory(tmp_path: Path) -> None:
    env = _env(tmp_path, "win32")
    (env.cwd / ".env").write_text("WINDOWS_TASK_NAME=OpenClawAgent\n")
    result = _invoke(env, "install", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["commands"][0][3] == "\\agentcron\\OpenClawAgent"


def test_an_explicit_name_wins_over_windows_task_name(tmp_path: Path) -> None:
    env = _env(tmp_path, environ={"WINDOWS_TASK_NAME": "mytask"})
    result = _invoke(
        env, "install", "--dry-run", "--json", "--kind", "windows-task", "--name", "other"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["commands"][0][3] == "\\agentcron\\other"


def test_windows_task_name_does_not_rename_the_other_kinds(tmp_path: Path) -> None:
    env = _env(tmp_path, environ={"WINDOWS_TASK_NAME": "mytask"})
    result = _invoke(env, "install", "--dry-run", "--json", "--kind", "systemd")
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.stdout)["files"][0]["path"]).name == "agentcron.service"


def test_uninstall_stop_and_status_find_the_task_by_windows_task_name(tmp_path: Path) -> None:
    environ = {"WINDOWS_TASK_NAME": "mytask"}
    for action in ("uninstall", "stop", "start"):
        result = _invoke(_env(tmp_path, "win32", environ=environ), action, "--dry-run", "--json")
        assert result.exit_code == 0, result.output
        assert all("\\agentcron\\mytask" in c for c in json.loads(result.stdout)["commands"])

    missing = RecordingRunner({("schtasks", "/Query"): CompletedCommand(1, "", "not found")})
    env = _env(tmp_path, "win32", environ=environ, runner=missing)
    result = _invoke(env, "stop")
    _refused(result, "no windows-task service named 'mytask' is installed")
    status = _invoke(env, "status", "--json")
    assert json.loads(status.stdout)["name"] == "mytask"
    assert all(call[3] == "\\agentcron\\mytask" for call in missing.calls)


@pytest.mark.parametrize("where", ["environ", "dotenv"])
@pytest.mark.parametrize(
    "args",
    [
        ["install", "--dry-run", "--json"],
        ["install", "--dry-run"],
        ["install"],
        ["show"],
    ],
)
def test_windows_task_enabled_false_refuses_a_task_install_naming_the_setting(
    tmp_path: Path, where: str, args: list[str]
) -> None:
    environ = {"WINDOWS_TASK_ENABLED": "false"} if where == "environ" else {}
    env = _env(tmp_path, "win32", environ=environ)
    if where == "dotenv":
        (env.cwd / ".env").write_text("WINDOWS_TASK_ENABLED=false\n")
    before = sorted(tmp_path.rglob("*"))

    result = _invoke(env, *args)

    _refused(result, "WINDOWS_TASK_ENABLED is false", "--kind nssm")
    assert env.runner.calls == []  # type: ignore[attr-defined]
    assert sorted(tmp_path.rglob("*")) == before


def test_windows_task_enabled_false_still_lets_you_remove_and_inspect_a_task(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path, "win32", environ={"WINDOWS_TASK_ENABLED": "false"})
    for args in (["uninstall"], ["stop"], ["status", "--json"]):
        assert _invoke(env, *args).exit_code == 0, args
    # the other Windows kind is not Task Scheduler
    nssm = _invoke(env, "install", "--dry-run", "--kind", "nssm", "--run-as-system")
    assert nssm.exit_code == 0, nssm.output


@pytest.mark.parametrize(
    ("value", "needle"),
    [("CON", "reserved Windows device name"), ("agent.", "ends with a dot")],
)
def test_a_windows_task_name_that_cannot_name_a_task_is_refused_naming_the_setting(
    tmp_path: Path, value: str, needle: str
) -> None:
    env = _env(tmp_path, "win32", environ={"WINDOWS_TASK_NAME": value})
    _refused(_invoke(env, "install", "--dry-run"), "WINDOWS_TASK_NAME", needle, "--name")
    assert _invoke(env, "install", "--dry-run", "--name", "agent").exit_code == 0


# --------------------------------------------------------------- 2. --watchdog-sec bound


@pytest.mark.parametrize("value", ["99999999999999999999", "86401", "-1"])
@pytest.mark.parametrize("command", ["install", "show"])
def test_a_watchdog_systemd_cannot_hold_or_out_of_range_is_refused(
    tmp_path: Path, value: str, command: str
) -> None:
    args = [command, "--kind", "systemd", "--watchdog-sec", value]
    if command == "install":
        args.append("--dry-run")
    _refused(_invoke(_env(tmp_path), *args), f"--watchdog-sec {value}", "86400")


def test_the_largest_watchdog_is_a_day_and_systemd_reads_it(tmp_path: Path) -> None:
    result = _invoke(_env(tmp_path), "show", "--kind", "systemd", "--watchdog-sec", "86400")
    assert result.exit_code == 0, result.output
    assert "WatchdogSec=86400" in result.stdout.splitlines()
    assert "WatchdogSec=0" not in result.stdout
    off = _invoke(_env(tmp_path), "show", "--kind", "systemd", "--watchdog-sec", "0")
    assert off.exit_code == 0 and "WatchdogSec" not in off.stdout


def test_a_service_spec_refuses_a_watchdog_longer_than_a_day(make_spec: SpecFactory) -> None:
    assert make_spec(watchdog_s=86_400).watchdog_s == 86_400
    with pytest.raises(ServiceError, match="more than 86400 s"):
        make_spec(watchdog_s=86_401)


@has_systemd_analyze
def test_systemd_analyze_accepts_the_largest_watchdog(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    unit = tmp_path / "agentcron.service"
    unit.write_text(render_unit(make_spec(watchdog_s=86_400)))
    assert verify_units([unit], tmp_path / "run") == ""


# --------------------------------------------------------------- 3. NSSM dry run


@pytest.mark.parametrize(
    "args",
    [
        ["install", "--dry-run"],
        ["install", "--dry-run", "--json"],
        ["show"],
    ],
)
def test_an_nssm_dry_run_refuses_what_the_real_install_refuses(
    tmp_path: Path, args: list[str]
) -> None:
    real = _invoke(_env(tmp_path, "win32", nssm=NSSM), "install", "--kind", "nssm")
    _refused(real, "--run-as-system")

    env = _env(tmp_path, "win32", nssm=NSSM)
    preview = _invoke(env, *args, "--kind", "nssm")
    _refused(preview)
    assert preview.stderr == real.stderr
    assert env.runner.calls == []  # type: ignore[attr-defined]


def test_an_nssm_dry_run_without_nssm_on_path_still_refuses_in_one_line(tmp_path: Path) -> None:
    result = _invoke(_env(tmp_path, "linux"), "install", "--dry-run", "--kind", "nssm")
    _refused(result, "NSSM services run as LocalSystem", "--run-as-system")


def test_the_nssm_plan_itself_refuses_without_run_as_system(windows_spec: SpecFactory) -> None:
    manager = NssmManager(windows_spec(), RecordingRunner(), nssm=NSSM)
    with pytest.raises(ServiceError, match="pass --run-as-system"):
        manager.plan_install()
    # uninstall, start and stop need no opt-in
    assert manager.plan_uninstall().commands


# --------------------------------------------------------------- 4. /tmp paths and PrivateTmp


def _unit_lines(spec: ServiceSpec) -> list[str]:
    return render_unit(spec).splitlines()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data_dir", PurePath("/tmp/agent/data")),
        ("data_dir", PurePath("/tmp")),
        ("data_dir", PurePath("/var/tmp/agent")),
        ("data_dir", PurePath("/srv/../tmp/agent")),
        ("working_dir", PurePath("/tmp/project")),
        ("config_file", PurePath("/var/tmp/agentcron.toml")),
        ("python", PurePath("/tmp/venv/bin/python")),
        ("writable_paths", (PurePath("/tmp/out"),)),
    ],
)
def test_a_path_in_tmp_leaves_out_private_tmp_and_keeps_tmp_writable(
    make_spec: SpecFactory, field: str, value: object
) -> None:
    base = {
        "data_dir": PurePath("/srv/agent/data"),
        "working_dir": PurePath("/srv/agent"),
        "python": PurePath("/usr/bin/python3"),
    }
    lines = _unit_lines(make_spec(**{**base, field: value}))

    assert "PrivateTmp=yes" not in lines
    assert any(line.startswith("# no PrivateTmp=: the ") for line in lines)
    read_write = next(line for line in lines if line.startswith("ReadWritePaths="))
    assert read_write.split("=", 1)[1].split()[-2:] == ["/tmp", "/var/tmp"]


@pytest.mark.parametrize("data_dir", ["/srv/agent/data", "/tmpfiles/data", "/srv/tmp/data"])
def test_paths_outside_tmp_keep_private_tmp(make_spec: SpecFactory, data_dir: str) -> None:
    lines = _unit_lines(
        make_spec(
            data_dir=PurePath(data_dir),
            working_dir=PurePath("/srv/agent"),
            python=PurePath("/usr/bin/python3"),
        )
    )
    assert "PrivateTmp=yes" in lines
    assert f"ReadWritePaths={data_dir}" in lines


def test_the_dry_run_says_why_private_tmp_is_left_out(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _invoke(env, "install", "--dry-run", "--user", "--data-dir", "/tmp/agent-data")
    assert result.exit_code == 0, result.output
    assert "PrivateTmp=yes" not in result.stdout
    assert "# no PrivateTmp=: the " in result.stdout
    assert "data dir /tmp/agent-data" in result.stdout
    assert "systemd-tmpfiles" in result.stdout


@has_systemd_analyze
def test_systemd_analyze_accepts_a_unit_without_private_tmp(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    unit = tmp_path / "agentcron.service"
    unit.write_text(render_unit(make_spec(data_dir=PurePath("/var/tmp/agent/data"))))
    assert verify_units([unit], tmp_path / "run") == ""


# --------------------------------------------------------------- 5. %VAR% and device names


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        ({"data_dir": PureWindowsPath(r"C:\Users\%USERNAME%\data")}, ["data dir", "arguments"]),
        (
            {
                "data_dir": PureWindowsPath(r"C:\a%b\data"),
                "config_file": PureWindowsPath(r"C:\c%d\agentcron.toml"),
            },
            ["data dir", "config file", "arguments"],
        ),
        ({"working_dir": PureWindowsPath(r"C:\%TEMP%\agent")}, ["working directory"]),
        ({"python": PureWindowsPath(r"C:\%PY%\python.exe")}, ["python executable", "command"]),
    ],
)
def test_percent_pairs_windows_would_expand_are_refused_for_both_windows_kinds(
    windows_spec: SpecFactory, overrides: dict[str, object], needles: list[str]
) -> None:
    spec = windows_spec(run_as_system=True, **overrides)
    for manager, plan in (
        ("Task Scheduler", lambda: WindowsTaskManager(spec, RecordingRunner(), user=USER)),
        ("NSSM", lambda: NssmManager(spec, RecordingRunner(), nssm=NSSM)),
    ):
        with pytest.raises(ServiceError) as caught:
            plan().plan_install()
        message = str(caught.value)
        assert "\n" not in message
        for needle in [*needles, manager, "use a path without '%'"]:
            assert needle in message, message


def test_a_single_percent_cannot_expand_and_is_kept(windows_spec: SpecFactory) -> None:
    data_dir = PureWindowsPath(r"C:\Users\Alice\100% agent\data")
    text = render_task_xml(windows_spec(data_dir=data_dir, config_file=None), user=USER)
    assert f'"{data_dir}"' in text


def test_the_cli_refuses_a_percent_var_data_dir_in_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, "linux")
    result = _invoke(
        env, "install", "--dry-run", "--kind", "windows-task", "--data-dir", "/x/%HOME%/data"
    )
    _refused(result, "two '%'", "Task Scheduler")


@pytest.mark.parametrize(
    "name",
    ["CON", "con", "Nul", "PRN", "AUX", "COM1", "com9", "LPT1", "lpt9", "COM0", "COM\u00b9"]
    + ["CON.txt", "nul.tar.gz", "Aux.task", "CON .txt", "CONIN$", "conout$"],
)
def test_reserved_device_names_are_refused_as_task_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ServiceError, match="reserved Windows device name"):
        WindowsTaskManager(
            ServiceSpec(data_dir=PurePath("/d"), working_dir=PurePath("/w"), name=name),
            RecordingRunner(),
            user=USER,
        )
    result = _invoke(_env(tmp_path, "win32"), "install", "--dry-run", "--name", name)
    _refused(result, "reserved Windows device name", "--name")


@pytest.mark.parametrize("name", ["CONSOLE", "COM10", "LPT", "xCON", "con-agent", "agent.con"])
def test_names_that_only_look_like_devices_are_accepted(tmp_path: Path, name: str) -> None:
    result = _invoke(_env(tmp_path, "win32"), "install", "--dry-run", "--json", "--name", name)
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.stdout)["files"][0]["path"]).name == f"{name}.task.xml"


# --------------------------------------------------------------- presets


@pytest.mark.parametrize("kind", ["systemd", "launchd", "windows-task"])
def test_a_service_installed_with_a_preset_runs_agentcron_run_with_it(
    tmp_path: Path, kind: str
) -> None:
    # Without it, a service started after `agentcron run --preset agent-loops` ran without
    # the preset, and so removed its loops (docs/presets.md).
    result = _invoke(_env(tmp_path), "show", "--kind", kind, "--preset", "agent-loops")
    assert result.exit_code == 0, result.output
    assert "--preset" in result.stdout and "agent-loops" in result.stdout


def test_the_run_argv_of_a_spec_with_a_preset_ends_with_it(make_spec: SpecFactory) -> None:
    argv = make_spec(presets=("agent-loops",)).run_argv()
    assert argv[-2:] == ("--preset", "agent-loops")
    assert "--preset" not in make_spec().run_argv()


def test_an_unknown_preset_is_refused_in_one_line(tmp_path: Path) -> None:
    result = _invoke(_env(tmp_path), "show", "--kind", "systemd", "--preset", "nope")
    _refused(result, "unknown preset 'nope'", "agent-loops")
