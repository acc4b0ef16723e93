"""Windows Task Scheduler: the task XML, the schtasks argv lists, status parsing."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path, PureWindowsPath

import pytest
from service_testlib import HOSTILE, SpecFactory

from agentcron.service import CompletedCommand, RecordingRunner, ServiceError, apply_plan
from agentcron.service.windows_task import (
    TASK_NS,
    WindowsTaskManager,
    parse_query_csv,
    render_task_xml,
    windows_cmdline,
)

DATA = Path(__file__).parent / "data"
NS = {"t": TASK_NS}
USER = "DESKTOP\\alice"
TASK = "\\agentcron\\agentcron"


def _text(root: ET.Element, path: str) -> str | None:
    found = root.find(path, NS)
    return None if found is None else found.text


def test_the_task_xml_matches_the_checked_in_expected_file(windows_spec: SpecFactory) -> None:
    expected = (DATA / "agentcron.task.xml").read_text("utf-8")
    assert render_task_xml(windows_spec(daily_at="02:00"), user=USER) == expected


def test_the_task_xml_holds_every_setting_in_the_task_scheduler_namespace(
    windows_spec: SpecFactory,
) -> None:
    root = ET.fromstring(render_task_xml(windows_spec(daily_at="02:00"), user=USER))

    assert root.tag == f"{{{TASK_NS}}}Task"
    assert float(root.attrib["version"]) >= 1.2
    assert _text(root, "t:RegistrationInfo/t:URI") == TASK
    assert _text(root, "t:Triggers/t:BootTrigger/t:Enabled") == "true"
    assert _text(root, "t:Triggers/t:LogonTrigger/t:UserId") == USER
    assert _text(root, "t:Triggers/t:CalendarTrigger/t:StartBoundary") == "2024-01-01T02:00:00"
    assert _text(root, "t:Triggers/t:CalendarTrigger/t:ScheduleByDay/t:DaysInterval") == "1"
    assert _text(root, "t:Principals/t:Principal/t:UserId") == USER
    assert _text(root, "t:Principals/t:Principal/t:RunLevel") == "LeastPrivilege"
    settings = {
        "MultipleInstancesPolicy": "IgnoreNew",
        "StartWhenAvailable": "true",
        "DisallowStartIfOnBatteries": "false",
        "StopIfGoingOnBatteries": "false",
        "ExecutionTimeLimit": "PT0S",
        "WakeToRun": "false",
        "RestartOnFailure/t:Interval": "PT1M",
        "RestartOnFailure/t:Count": "255",
    }
    for name, value in settings.items():
        assert _text(root, f"t:Settings/t:{name}") == value, name
    assert _text(root, "t:Actions/t:Exec/t:Command") == r"C:\Program Files\Python311\python.exe"
    assert _text(root, "t:Actions/t:Exec/t:Arguments") == (
        r"-m agentcron run --data-dir C:\Users\Alice\agent\data"
        r" --config C:\Users\Alice\agent\agentcron.toml"
    )
    assert _text(root, "t:Actions/t:Exec/t:WorkingDirectory") == r"C:\Users\Alice\agent"


def test_without_a_daily_time_there_is_no_calendar_trigger(windows_spec: SpecFactory) -> None:
    root = ET.fromstring(render_task_xml(windows_spec(), user=USER))
    assert root.find("t:Triggers/t:CalendarTrigger", NS) is None


def test_wake_to_run_and_restart_settings_come_from_the_spec(windows_spec: SpecFactory) -> None:
    spec = windows_spec(wake_to_run=True, restart_delay_s=150, restart_count=5)
    root = ET.fromstring(render_task_xml(spec, user=USER))
    assert _text(root, "t:Settings/t:WakeToRun") == "true"
    assert _text(root, "t:Settings/t:RestartOnFailure/t:Interval") == "PT3M"
    assert _text(root, "t:Settings/t:RestartOnFailure/t:Count") == "5"


def test_system_and_highest_privileges_only_with_the_explicit_flag_and_a_warning(
    windows_spec: SpecFactory,
) -> None:
    spec = windows_spec(run_as_system=True)
    root = ET.fromstring(render_task_xml(spec, user=USER))
    assert _text(root, "t:Principals/t:Principal/t:UserId") == "S-1-5-18"
    assert _text(root, "t:Principals/t:Principal/t:RunLevel") == "HighestAvailable"
    notes = WindowsTaskManager(spec, RecordingRunner(), user=USER).plan_install().notes
    assert any("runs as SYSTEM" in note for note in notes)


def test_environment_variables_are_refused_with_what_to_do_instead(
    windows_spec: SpecFactory,
) -> None:
    with pytest.raises(ServiceError, match=r"\.env file .* or use --kind nssm"):
        render_task_xml(windows_spec(environment={"A": "1"}), user=USER)


def test_hostile_paths_are_escaped_for_xml_and_quoted_as_windows_arguments(
    windows_spec: SpecFactory,
) -> None:
    data_dir = PureWindowsPath("C:\\Users\\Alice\\" + HOSTILE.replace('"', "") + "\\data")
    spec = windows_spec(data_dir=data_dir, config_file=None)
    text = render_task_xml(spec, user=USER)
    root = ET.fromstring(text)

    arguments = _text(root, "t:Actions/t:Exec/t:Arguments")
    assert arguments == windows_cmdline(["-m", "agentcron", "run", "--data-dir", str(data_dir)])
    assert f'"{data_dir}"' in (arguments or "")
    assert "&amp;" in text and "&lt;" not in text.split("<Arguments>")[0]


def test_install_writes_utf16_xml_then_creates_and_runs_the_task(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    runner = RecordingRunner()
    manager = WindowsTaskManager(make_spec(), runner, user=USER)
    plan = manager.plan_install()
    xml_path = tmp_path / "data" / "service" / "agentcron.task.xml"

    assert plan.commands == (
        ("schtasks", "/Create", "/TN", TASK, "/XML", str(xml_path), "/F"),
        ("schtasks", "/Run", "/TN", TASK),
    )
    apply_plan(plan, runner)

    raw = xml_path.read_bytes()
    assert raw[:2] == b"\xff\xfe"
    assert ET.fromstring(raw).tag == f"{{{TASK_NS}}}Task"


def test_uninstall_start_and_stop_are_exact_schtasks_argv_lists(make_spec: SpecFactory) -> None:
    manager = WindowsTaskManager(make_spec(), RecordingRunner(), user=USER)
    assert manager.plan_uninstall().commands == (
        ("schtasks", "/End", "/TN", TASK),
        ("schtasks", "/Delete", "/TN", TASK, "/F"),
    )
    assert manager.plan_start().commands == (("schtasks", "/Run", "/TN", TASK),)
    assert manager.plan_stop().commands == (("schtasks", "/End", "/TN", TASK),)


def test_a_hostile_task_name_stays_one_argv_element(make_spec: SpecFactory) -> None:
    name = "agent & cron; $(calc) ü 日本"
    manager = WindowsTaskManager(make_spec(name=name), RecordingRunner(), user=USER)
    create = manager.plan_install().commands[0]
    assert create[3] == "\\agentcron\\" + name
    assert len(create) == 7
    # what CreateProcess receives: the name quoted as a single argument
    assert subprocess.list2cmdline(create[:4]).endswith(f'"\\agentcron\\{name}"')


def test_a_failed_registration_deletes_nothing_it_did_not_create_and_removes_the_xml(
    make_spec: SpecFactory, tmp_path: Path
) -> None:
    runner = RecordingRunner(
        {("schtasks", "/Create"): CompletedCommand(1, "", "ERROR: Access is denied.")}
    )
    manager = WindowsTaskManager(make_spec(), runner, user=USER)

    with pytest.raises(ServiceError, match="Access is denied"):
        apply_plan(manager.plan_install(), runner)

    assert runner.calls == [
        (
            "schtasks",
            "/Create",
            "/TN",
            TASK,
            "/XML",
            str(tmp_path / "data" / "service" / "agentcron.task.xml"),
            "/F",
        )
    ]
    assert not (tmp_path / "data").exists()


def test_a_failed_start_deletes_the_task_it_just_created(make_spec: SpecFactory) -> None:
    runner = RecordingRunner({("schtasks", "/Run"): CompletedCommand(1, "", "ERROR: failed")})
    manager = WindowsTaskManager(make_spec(), runner, user=USER)

    with pytest.raises(ServiceError):
        apply_plan(manager.plan_install(), runner)

    assert runner.calls[-1] == ("schtasks", "/Delete", "/TN", TASK, "/F")


def test_an_existing_task_is_refused_without_force(make_spec: SpecFactory) -> None:
    manager = WindowsTaskManager(make_spec(), RecordingRunner(), user=USER)
    with pytest.raises(ServiceError, match="already exists; pass --force"):
        manager.check_install(force=False)
    manager.check_install(force=True)
    assert manager.plan_install(replace=True).commands[0] == ("schtasks", "/End", "/TN", TASK)


def test_schtasks_missing_means_this_is_not_windows(make_spec: SpecFactory) -> None:
    runner = RecordingRunner(default=CompletedCommand(127))
    with pytest.raises(ServiceError, match="needs Windows"):
        WindowsTaskManager(make_spec(), runner, user=USER).check_install(force=False)


QUERY_CSV = (
    '"HostName","TaskName","Next Run Time","Status","Logon Mode","Last Run Time",'
    '"Last Result","Author","Task To Run","Start In","Comment","Scheduled Task State"\r\n'
    '"DESKTOP","\\agentcron\\agentcron","N/A","Running","Interactive/Background",'
    '"26/11/2026 04:00:01","267009","DESKTOP\\alice","C:\\Python\\python.exe -m agentcron run",'
    '"C:\\agent","N/A","Enabled"\r\n'
)


def test_status_is_parsed_from_the_verbose_csv_query_by_column_position(
    make_spec: SpecFactory,
) -> None:
    assert parse_query_csv(QUERY_CSV) == {
        "task": TASK,
        "next_run": "N/A",
        "state": "Running",
        "last_run": "26/11/2026 04:00:01",
        "last_result": "267009",
    }
    localised = QUERY_CSV.replace("Next Run Time", "Nächste Laufzeit")
    assert parse_query_csv(localised)["state"] == "Running"
    runner = RecordingRunner({("schtasks", "/Query"): CompletedCommand(0, QUERY_CSV)})
    status = WindowsTaskManager(make_spec(), runner, user=USER).status()
    assert (status.installed, status.state) == (True, "Running")
    assert runner.calls == [("schtasks", "/Query", "/TN", TASK, "/FO", "CSV", "/V")]


def test_status_of_a_missing_task_is_not_installed(make_spec: SpecFactory) -> None:
    runner = RecordingRunner({("schtasks",): CompletedCommand(1, "", "ERROR: not found")})
    status = WindowsTaskManager(make_spec(), runner, user=USER).status()
    assert (status.installed, status.state) == (False, "not installed")
    assert parse_query_csv("") == {}


def test_the_xml_is_written_with_windows_paths_untouched(windows_spec: SpecFactory) -> None:
    manager = WindowsTaskManager(windows_spec(), RecordingRunner(), user=USER)
    write = manager.plan_install().files[0]
    assert write.path == PureWindowsPath(r"C:\Users\Alice\agent\data\service\agentcron.task.xml")
    assert write.encoding == "utf-16"
