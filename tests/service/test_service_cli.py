"""`agentcron service ...`: dry runs change nothing, bad input is one line with exit 2."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path, PurePath

import pytest
from service_testlib import host_for
from typer.testing import CliRunner, Result

from agentcron.cli import service as service_cli
from agentcron.cli.main import build_app
from agentcron.service import CompletedCommand, RecordingRunner

PYTHON = PurePath("/opt/agent/.venv/bin/python")


def _env(
    tmp_path: Path,
    platform: str = "linux",
    runner: RecordingRunner | None = None,
    *,
    nssm: str | None = None,
    user: str = "alice",
    can_write: bool = True,
) -> service_cli.ServiceCliEnv:
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    host = replace(
        host_for(platform, tmp_path, nssm=nssm), user=user, can_write=lambda _: can_write
    )
    return service_cli.ServiceCliEnv(host, runner or RecordingRunner(), cwd, PYTHON, {})


def _invoke(env: service_cli.ServiceCliEnv, *args: str) -> Result:
    return CliRunner().invoke(service_cli.app, list(args), obj=env)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_the_service_group_is_registered_in_the_agentcron_command() -> None:
    result = CliRunner().invoke(build_app(), ["service", "--help"])
    assert result.exit_code == 0
    for command in ("install", "uninstall", "start", "stop", "status", "show", "export-timers"):
        assert command in result.output


def test_dry_run_json_prints_exactly_files_and_commands_for_a_windows_task(tmp_path: Path) -> None:
    env = _env(tmp_path, "win32")
    result = _invoke(env, "install", "--dry-run", "--json", "--data-dir", "state")

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    xml_path = str(tmp_path / "cwd" / "state" / "service" / "agentcron.task.xml")
    assert list(body) == ["files", "commands"]
    assert [f["path"] for f in body["files"]] == [xml_path]
    assert "<BootTrigger>" in body["files"][0]["content"]
    assert body["commands"] == [
        ["schtasks", "/Create", "/TN", "\\agentcron\\agentcron", "/XML", xml_path, "/F"],
        ["schtasks", "/Run", "/TN", "\\agentcron\\agentcron"],
    ]
    assert env.runner.calls == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("platform", "kind", "extra"),
    [
        ("linux", "systemd", []),
        ("linux", "systemd", ["--user"]),
        ("win32", "windows-task", ["--wake-to-run", "--daily-at", "03:30"]),
        ("win32", "nssm", ["--run-as-system", "--nssm", "C:\\nssm.exe"]),
        ("darwin", "launchd", ["--user"]),
        ("linux", "windows-task", []),
    ],
)
def test_a_dry_run_of_any_kind_writes_nothing_and_runs_nothing(
    tmp_path: Path, platform: str, kind: str, extra: list[str]
) -> None:
    env = _env(tmp_path, platform)
    before = _tree(tmp_path)
    for args in (
        ["install", "--dry-run"],
        ["install", "--dry-run", "--json"],
        ["uninstall", "--dry-run"],
        ["stop", "--dry-run", "--json"],
    ):
        command = [*args, "--kind", kind]
        if args[0] == "install":
            command += extra
        result = _invoke(env, *command)
        assert result.exit_code == 0, result.output
    assert _tree(tmp_path) == before
    assert env.runner.calls == []  # type: ignore[attr-defined]


def test_the_human_dry_run_shows_every_file_and_every_command(tmp_path: Path) -> None:
    result = _invoke(_env(tmp_path), "install", "--dry-run", "--kind", "systemd")
    assert result.exit_code == 0
    out = result.stdout
    assert f"# would write {tmp_path / 'units' / 'agentcron.service'}" in out
    assert f"ExecStart={PYTHON} -m agentcron run --data-dir {tmp_path / 'cwd' / 'data'}" in out
    assert '$ ["systemctl", "daemon-reload"]' in out
    assert '$ ["systemctl", "enable", "--now", "agentcron.service"]' in out


def test_a_hostile_task_name_is_one_argv_element_in_the_dry_run(tmp_path: Path) -> None:
    name = "agent & cron; $(calc) 'x' ü"
    result = _invoke(_env(tmp_path, "win32"), "install", "--dry-run", "--json", "--name", name)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["commands"][0][3] == f"\\agentcron\\{name}"


def test_install_writes_the_unit_and_runs_systemctl_through_the_runner(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _invoke(env, "install", "--user", "--data-dir", str(tmp_path / "data"))

    assert result.exit_code == 0, result.output
    assert "installed" in result.stdout
    unit = (tmp_path / "units" / "agentcron.service").read_text()
    assert f"ReadWritePaths={tmp_path / 'data'}" in unit
    assert (tmp_path / "data").is_dir()
    assert env.runner.calls == [  # type: ignore[attr-defined]
        ("systemctl", "--version"),
        (
            "systemctl",
            "--user",
            "show",
            "--property=LoadState,ActiveState,SubState,UnitFileState,MainPID,ExecMainStartTimestamp,NRestarts,FragmentPath",
            "agentcron.service",
        ),
        ("systemctl", "--user", "daemon-reload"),
        ("systemctl", "--user", "enable", "--now", "agentcron.service"),
    ]


def test_a_failing_install_exits_2_with_one_line_and_leaves_nothing_behind(tmp_path: Path) -> None:
    runner = RecordingRunner(
        {("systemctl", "--user", "enable"): CompletedCommand(1, "", "Failed to enable unit\nmore")}
    )
    env = _env(tmp_path, runner=runner)
    before = _tree(tmp_path)

    result = _invoke(env, "install", "--user", "--data-dir", str(tmp_path / "data"))

    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "agentcron: ['systemctl', '--user', 'enable', '--now', 'agentcron.service'] failed"
    )
    assert "rolled back" in result.stderr
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    ("platform", "args", "message"),
    [
        (
            "linux",
            ["install", "--kind", "windows-task"],
            "--kind windows-task is not supported on linux",
        ),
        ("linux", ["install", "--kind", "cron"], "unknown service kind 'cron'"),
        ("freebsd14", ["install"], "no service kind is supported"),
        ("win32", ["install", "--kind", "nssm", "--run-as-system"], "nssm not found on PATH"),
        ("win32", ["install", "--name", "a/b"], "are not allowed"),
        ("linux", ["install", "--name", "agent;cron"], "not a valid systemd unit name"),
        ("linux", ["install", "--env", "NOVALUE"], "is not KEY=VALUE"),
        ("linux", ["install", "--daily-at", "7pm"], "is not HH:MM"),
        ("linux", ["start"], "no systemd service named 'agentcron' is installed"),
        ("linux", ["export-timers", "--out", "x"], "no database at"),
        # Typed by hand, these were exit 0 with a "not converted" note, or silently taken:
        ("linux", ["export-timers", "--out", "x", "--cron", "a=61 * * * *"], "--cron 'a=61"),
        (
            "linux",
            ["export-timers", "--out", "x", "--cron", "a=@daily", "--tz", "Mars/X"],
            "--tz: timezone: unknown time zone 'Mars/X'",
        ),
        (
            "linux",
            ["export-timers", "--out", "x", "--cron", "a=@daily", "--misfire", "bogus"],
            "--misfire 'bogus': use run_once, skip or run_all",
        ),
        ("linux", ["export-timers", "--out", "x", "--cron", "a/b=@daily"], 'may not contain "/"'),
        (
            "linux",
            ["export-timers", "--out", "x", "--cron", "a=@daily", "--cron", "a=@hourly"],
            "the job id 'a' is given twice",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(
    tmp_path: Path, platform: str, args: list[str], message: str
) -> None:
    runner = RecordingRunner({("systemctl", "show"): CompletedCommand(0, "LoadState=not-found\n")})
    result = _invoke(_env(tmp_path, platform, runner), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("agentcron: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_an_existing_task_is_refused_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    env = _env(tmp_path, "win32")  # the recording runner answers /Query with success
    refused = _invoke(env, "install")
    assert refused.exit_code == 2
    assert "already exists; pass --force to replace it" in refused.stderr

    replaced = _invoke(env, "install", "--force", "--data-dir", str(tmp_path / "data"))
    assert replaced.exit_code == 0, replaced.output
    assert ("schtasks", "/End", "/TN", "\\agentcron\\agentcron") in env.runner.calls  # type: ignore[attr-defined]


def test_a_system_unit_without_permission_says_to_use_sudo_or_user(tmp_path: Path) -> None:
    result = _invoke(_env(tmp_path, can_write=False), "install")
    assert result.exit_code == 2
    assert "no permission to write" in result.stderr and "--user" in result.stderr


def test_installing_a_system_unit_as_root_needs_an_account_or_the_explicit_flag(
    tmp_path: Path,
) -> None:
    result = _invoke(_env(tmp_path, user="root"), "install", "--dry-run")
    assert result.exit_code == 2
    assert "pass --account USER" in result.stderr
    ok = _invoke(_env(tmp_path, user="root"), "install", "--dry-run", "--account", "agent")
    assert "User=agent" in ok.stdout


def test_status_prints_the_parsed_state_as_json(tmp_path: Path) -> None:
    shown = "LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=7\n"
    env = _env(
        tmp_path, runner=RecordingRunner({("systemctl", "show"): CompletedCommand(0, shown)})
    )
    result = _invoke(env, "status", "--json")
    assert result.exit_code == 0
    body = json.loads(result.stdout)
    assert (body["installed"], body["state"], body["details"]["MainPID"]) == (
        True,
        "active (running)",
        "7",
    )


def test_show_prints_the_plist_on_any_platform(tmp_path: Path) -> None:
    result = _invoke(_env(tmp_path), "show", "--kind", "launchd", "--user")
    assert result.exit_code == 0
    assert "<key>KeepAlive</key>" in result.stdout


def test_export_timers_dry_run_json_lists_files_and_the_reason_for_each_refusal(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    result = _invoke(
        env,
        "export-timers",
        "--out",
        "timers",
        "--cron",
        "backup=0 2 * * *",
        "--cron",
        "eom=0 0 L * *",
        "--tz",
        "Europe/Berlin",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [Path(f["path"]).name for f in body["files"]] == [
        "agentcron-job-backup.service",
        "agentcron-job-backup.timer",
    ]
    timers = {t["job_id"]: t for t in body["timers"]}
    assert timers["backup"]["on_calendar"] == "*-*-* 02:00:00 Europe/Berlin"
    assert timers["eom"]["on_calendar"] is None and "uses 'L'" in timers["eom"]["reasons"][0]
    assert not (tmp_path / "cwd" / "timers").exists()


def test_export_timers_writes_the_units_and_explains_what_it_skipped(tmp_path: Path) -> None:
    result = _invoke(
        _env(tmp_path),
        "export-timers",
        "--out",
        str(tmp_path / "t"),
        "--cron",
        "backup=0 2 * * *",
        "--cron",
        "both=0 0 1 * MON",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == [
        "agentcron-job-backup.service",
        "agentcron-job-backup.timer",
    ]
    assert "wrote timer backup: OnCalendar=*-*-* 02:00:00 UTC" in result.stdout
    assert "not converted: both (0 0 1 * MON): day-of-month and day-of-week" in result.stderr


def test_no_notify_makes_a_simple_unit_without_a_watchdog(tmp_path: Path) -> None:
    result = _invoke(_env(tmp_path), "show", "--no-notify")
    assert result.exit_code == 0, result.output
    assert "Type=simple" in result.stdout
    assert "WatchdogSec" not in result.stdout and "NotifyAccess" not in result.stdout


def test_export_timers_reads_the_cron_jobs_of_the_store_by_default(tmp_path: Path) -> None:
    import asyncio

    from agentcron.jobs import build_job, job_to_definition
    from agentcron.models import StoredJob
    from agentcron.store.sqlite import SqliteStore

    async def seed() -> None:
        store = SqliteStore(tmp_path / "data" / "scheduler.db")
        await store.open()
        for job in (
            build_job("backup", trigger="0 2 * * *", handler="os:getcwd", timezone="Europe/Berlin"),
            build_job("poll", trigger={"type": "interval", "seconds": 60}, handler="os:getcwd"),
            build_job("eom", trigger="0 0 L * *", handler="os:getcwd", misfire="skip"),
        ):
            await store.save_job(
                StoredJob(id=job.id, definition=job_to_definition(job)), actor="test"
            )
        await store.close()

    asyncio.run(seed())
    result = _invoke(
        _env(tmp_path),
        "export-timers",
        "--out",
        str(tmp_path / "t"),
        "--data-dir",
        str(tmp_path / "data"),
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    timers = {t["job_id"]: t for t in json.loads(result.stdout)["timers"]}
    assert sorted(timers) == ["backup", "eom"]  # the interval job has no cron expression
    assert timers["backup"]["on_calendar"] == "*-*-* 02:00:00 Europe/Berlin"
    assert timers["eom"]["on_calendar"] is None


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_install_refuses_a_config_that_is_not_a_file_as_run_would(
    tmp_path: Path, what: str
) -> None:
    # QA: `install --dry-run --config /nonexistent.toml` (or a directory) exited 0 with a
    # unit whose ExecStart fails at every start: an endless restart loop (Restart=always).
    config = tmp_path / ("nonexistent.toml" if what == "missing" else "configs")
    if what == "directory":
        config.mkdir()
    for command in (["install", "--dry-run"], ["install"], ["show"]):
        runner = RecordingRunner()
        result = _invoke(_env(tmp_path, runner=runner), *command, "--config", str(config))
        assert result.exit_code == 2, (command, result.output)
        assert result.stderr.startswith(f"agentcron: --config {config} ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        assert runner.calls == []


def test_install_refuses_a_directory_named_agentcron_toml_in_the_working_directory(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    (env.cwd / "agentcron.toml").mkdir()
    result = _invoke(env, "install", "--dry-run")
    assert result.exit_code == 2, result.output
    assert "agentcron.toml (the jobs file read by default) is a directory" in result.stderr
    assert result.stderr.count("\n") == 1


def test_install_passes_an_existing_config_file_to_run(tmp_path: Path) -> None:
    config = tmp_path / "agentcron.toml"
    config.write_text("")
    result = _invoke(_env(tmp_path), "install", "--dry-run", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert f"--config {config}" in result.stdout


def test_install_takes_the_data_dir_of_the_working_directorys_env_file(tmp_path: Path) -> None:
    # `agentcron run` in the service's working directory reads its .env; the unit must not
    # pass it another --data-dir.
    env = _env(tmp_path)
    (env.cwd / ".env").write_text("SCHEDULER_DATA_DIR=state\n")
    result = _invoke(env, "install", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"--data-dir {env.cwd / 'state'}" in result.stdout
