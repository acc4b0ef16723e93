"""Cron to systemd `OnCalendar=`: exact translations, refusals with reasons, and agreement
between `systemd-analyze calendar` and `agentcron.cron` on the next fire times."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from service_testlib import systemd_analyze, verify_units

from agentcron.cron import CronExpression
from agentcron.service import RecordingRunner, apply_plan
from agentcron.service.timers import (
    NotConvertible,
    TimerJob,
    convert,
    escape_unit_name,
    export_timers,
    to_on_calendar,
)

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="systemd-analyze is Linux-only")

CONVERTIBLE = [
    ("*/15 * * * *", "UTC", "*-*-* *:00/15:00 UTC"),
    ("0 9 * * 1-5", "Europe/Berlin", "Mon..Fri *-*-* 09:00:00 Europe/Berlin"),
    ("30 2 1,15 * *", "UTC", "*-*-01,15 02:30:00 UTC"),
    ("0 0 * * 0", "UTC", "Sun *-*-* 00:00:00 UTC"),
    ("0 0 * * 7", "UTC", "Sun *-*-* 00:00:00 UTC"),
    ("0 0 * * SAT,SUN", "UTC", "Sat,Sun *-*-* 00:00:00 UTC"),
    ("0 0 * * 0-2", "UTC", "Mon,Tue,Sun *-*-* 00:00:00 UTC"),
    ("0 12 * JAN,jul *", "UTC", "*-01,07-* 12:00:00 UTC"),
    (
        "0 8-18/2 * * MON-FRI",
        "America/New_York",
        "Mon..Fri *-*-* 08,10,12,14,16,18:00:00 America/New_York",
    ),
    ("5 4 */2 * *", "UTC", "*-*-01/2 04:05:00 UTC"),
    ("0 0 */2 * 1", "UTC", "Mon *-*-01/2 00:00:00 UTC"),
    ("0 0 1 */3 *", "Asia/Tokyo", "*-01/3-01 00:00:00 Asia/Tokyo"),
    ("10-40/10 1 2 3 * *", "UTC", "*-*-03 02:01:10,20,30,40 UTC"),
    ("*/30 * * * * *", "UTC", "*-*-* *:*:00,30 UTC"),
    ("0 30 6 * * * 2026,2027", "UTC", "2026,2027-*-* 06:30:00 UTC"),
    ("@daily", "UTC", "*-*-* 00:00:00 UTC"),
    ("@hourly", "Europe/London", "*-*-* *:00:00 Europe/London"),
    ("@weekly", "UTC", "Sun *-*-* 00:00:00 UTC"),
    ("DAILY_MAINTENANCE", "UTC", "*-*-* 02:00:00 UTC"),
    ("NOTIFICATION_DIGEST", "UTC", "*-*-* 09,17:00:00 UTC"),
    ("0 22 * * 1-5", "Australia/Sydney", "Mon..Fri *-*-* 22:00:00 Australia/Sydney"),
    ("59 23 31 12 *", "UTC", "*-12-31 23:59:00 UTC"),
]

REFUSED = [
    ("0 0 L * *", "UTC", "uses 'L'"),
    ("0 0 15W * *", "UTC", "uses 'W'"),
    ("0 0 * * 5#3", "UTC", "uses '#'"),
    ("0 0 ? * MON", "UTC", "uses '?'"),
    ("0 0 * * 5L", "UTC", "uses 'L'"),
    ("0 0 1 * 1", "UTC", "both restricted"),
    ("0 0 1-7 * MON", "UTC", "both restricted"),
    ("@reboot", "UTC", "OnBootSec"),
    ("@fortnightly", "UTC", "unknown macro"),
    ("61 * * * *", "UTC", "minute field: 61 is out of range 0-59"),
    ("* * * *", "UTC", "4 fields"),
    ("0 0 * * * * * *", "UTC", "8 fields"),
    ("*/0 * * * *", "UTC", "bad step"),
    ("5-1 * * * *", "UTC", "runs backwards"),
    ("0 0 * FOO *", "UTC", "'FOO' is not a number or name"),
    ("0 0 * * *", "Mars/Olympus", "unknown"),
    ("0 0 * * *", "Europe/Berlin Sun", "not an IANA name"),
    ("0 0 * * *", "localtime", "not an IANA time zone name"),
]


@pytest.mark.parametrize(("cron", "tz", "expected"), CONVERTIBLE)
def test_a_convertible_expression_becomes_its_exact_on_calendar(
    cron: str, tz: str, expected: str
) -> None:
    assert to_on_calendar(cron, tz) == expected


@pytest.mark.parametrize(("cron", "tz", "reason"), REFUSED)
def test_an_expression_systemd_would_read_differently_is_refused_with_the_reason(
    cron: str, tz: str, reason: str
) -> None:
    with pytest.raises(NotConvertible, match=re.escape(reason)):
        to_on_calendar(cron, tz)


def test_persistent_follows_the_misfire_policy_and_run_all_is_refused() -> None:
    assert convert(TimerJob("a", "0 2 * * *", "UTC", "run_once")).persistent is True
    skip = convert(TimerJob("a", "0 2 * * *", "UTC", "skip"))
    assert (skip.on_calendar, skip.persistent) == ("*-*-* 02:00:00 UTC", False)
    run_all = convert(TimerJob("a", "0 2 * * *", "UTC", "run_all"))
    assert run_all.on_calendar is None
    assert "runs missed fires once" in run_all.reasons[0]


def test_a_zone_with_daylight_saving_gets_a_warning_and_utc_does_not() -> None:
    assert convert(TimerJob("a", "30 2 * * *", "Europe/Berlin")).warnings
    assert convert(TimerJob("a", "30 2 * * *", "UTC")).warnings == ()


_ELAPSE = re.compile(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def _systemd_fires(on_calendar: str, base: datetime, tmp_path: Path, count: int) -> list[str]:
    done = systemd_analyze(
        "calendar",
        f"--iterations={count}",
        f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC",
        on_calendar,
        runtime_dir=tmp_path / "run",
    )
    assert done.returncode == 0, done.stderr
    return _ELAPSE.findall(done.stdout)


def _cron_fires(cron: str, tz: str, base: datetime, count: int) -> list[str]:
    expression = CronExpression(cron, tz=tz)
    fires: list[str] = []
    current: datetime | None = base
    for _ in range(count):
        assert current is not None
        current = expression.next(current)
        if current is None:
            break
        fires.append(f"{current.astimezone(UTC):%Y-%m-%d %H:%M:%S}")
    return fires


@linux_only
@pytest.mark.parametrize(("cron", "tz", "on_calendar"), CONVERTIBLE)
@pytest.mark.parametrize(
    "base", [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 14, 13, 7, 3, tzinfo=UTC)]
)
def test_systemd_and_agentcron_agree_on_the_next_ten_fire_times(
    cron: str, tz: str, on_calendar: str, base: datetime, tmp_path: Path
) -> None:
    assert _systemd_fires(on_calendar, base, tmp_path, 10) == _cron_fires(cron, tz, base, 10)


@linux_only
def test_the_dst_warning_is_real_systemd_skips_a_time_that_does_not_exist(tmp_path: Path) -> None:
    # Europe/Berlin springs forward on 2026-03-29 at 02:00: 02:30 does not exist that day.
    # agentcron.cron runs the job at 03:00 (Debian's rule); systemd skips the day.
    base = datetime(2026, 3, 28, 12, tzinfo=UTC)
    on_calendar = to_on_calendar("30 2 * * *", "Europe/Berlin")
    assert _cron_fires("30 2 * * *", "Europe/Berlin", base, 2) == [
        "2026-03-29 01:00:00",
        "2026-03-30 00:30:00",
    ]
    assert _systemd_fires(on_calendar, base, tmp_path, 2) == [
        "2026-03-30 00:30:00",
        "2026-03-31 00:30:00",
    ]


def test_export_writes_a_timer_and_a_service_per_convertible_job_and_reports_the_rest(
    tmp_path: Path,
) -> None:
    jobs = [
        TimerJob("nightly-backup", "0 2 * * *", "Europe/Berlin", "run_once"),
        TimerJob("digest", "0 9,17 * * 1-5", "UTC", "skip"),
        TimerJob("month-end", "0 0 L * *", "UTC"),
    ]
    result = export_timers(
        jobs, tmp_path / "out", python=Path("/usr/bin/python3"), data_dir=Path("/srv/data")
    )
    apply_plan(result.plan, RecordingRunner())

    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "agentcron-job-digest.service",
        "agentcron-job-digest.timer",
        "agentcron-job-nightly\\x2dbackup.service",
        "agentcron-job-nightly\\x2dbackup.timer",
    ]
    timer = (tmp_path / "out" / "agentcron-job-nightly\\x2dbackup.timer").read_text()
    assert "OnCalendar=*-*-* 02:00:00 Europe/Berlin\nPersistent=true\n" in timer
    assert "Unit=agentcron-job-nightly\\x2dbackup.service" in timer
    service = (tmp_path / "out" / "agentcron-job-digest.service").read_text()
    assert (
        "ExecStart=/usr/bin/python3 -m agentcron jobs run --data-dir /srv/data -- digest\n"
        in service
    )
    assert "Persistent=false" in (tmp_path / "out" / "agentcron-job-digest.timer").read_text()
    assert [c.job_id for c in result.refused] == ["month-end"]
    assert "uses 'L'" in result.refused[0].reasons[0]


def test_a_job_whose_escaped_unit_name_is_too_long_is_refused_and_the_rest_exported(
    tmp_path: Path,
) -> None:
    # A valid 200-character id of "é" escapes to 1,600 characters: the whole export failed
    # with "File name too long" and wrote nothing.
    jobs = [TimerJob("é" * 200, "0 2 * * *", "UTC"), TimerJob("ok", "0 3 * * *", "UTC")]
    result = export_timers(
        jobs, tmp_path / "out", python=Path("/usr/bin/python3"), data_dir=Path("/srv/data")
    )
    apply_plan(result.plan, RecordingRunner())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "agentcron-job-ok.service",
        "agentcron-job-ok.timer",
    ]
    [refused] = result.refused
    assert "1622 characters once escaped (systemd allows 255)" in refused.reasons[0]


def test_job_ids_are_escaped_into_unit_names_like_systemd_escape() -> None:
    assert escape_unit_name("nightly-backup") == "nightly\\x2dbackup"
    assert escape_unit_name("a b/ü") == "a\\x20b-\\xc3\\xbc"
    assert escape_unit_name(".hidden") == "\\x2ehidden"


@linux_only
def test_unit_names_are_what_the_real_systemd_escape_makes_of_the_job_ids() -> None:
    # "/" became "\\x2f" here and "-" there: the docs promise systemd-escape's names.
    ids = ["nightly-backup", "a b/ü", ".hidden", "/lead/and/trail/", "x$`y'z\"\\", "日本"]
    made = subprocess.run(["systemd-escape", "--", *ids], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert made.stdout.split() == [escape_unit_name(job_id) for job_id in ids]


@linux_only
def test_exported_units_with_a_hostile_job_id_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    hostile = 'a b "q" & ; $(touch x) % ü'
    jobs = [TimerJob(hostile, "*/5 * * * *"), TimerJob("plain", "0 3 * * SUN", "Europe/Paris")]
    out = tmp_path / "out"
    result = export_timers(jobs, out, python=Path(sys.executable), data_dir=tmp_path / "data")
    apply_plan(result.plan, RecordingRunner())

    units = sorted(out.iterdir())
    assert len(units) == 4
    assert verify_units(units, tmp_path / "run") == ""
    service = next(p for p in units if p.suffix == ".service" and "plain" not in p.name)
    assert '"a b \\"q\\" & ; $$(touch x) %% ü"' in service.read_text()


@pytest.mark.parametrize("zone", ["America", "Europe/", "x" * 300])
def test_a_zone_name_that_is_a_folder_or_too_long_is_refused_as_unknown(zone: str) -> None:
    with pytest.raises(NotConvertible, match="is unknown"):
        to_on_calendar("0 2 * * *", zone)


def test_a_schedule_that_never_fires_is_not_exported_and_says_why() -> None:
    # systemd would accept *-02-30 and report "Next elapse: never".
    conversion = convert(TimerJob("feb30", "0 0 30 2 *", "UTC", "run_once"))
    assert conversion.on_calendar is None
    assert any("never fires" in reason for reason in conversion.reasons)
