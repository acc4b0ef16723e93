"""Hostile log records and unwritable log files: every line stays one line, nothing crashes."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest

from agentcron.logs import configure_logging

log = logging.getLogger("agentcron.test")


pytestmark = pytest.mark.usefixtures("restore_root_logger")


def agentcron_only_logger() -> logging.Logger:
    """A logger that reaches only the handlers of `configure_logging`, not pytest's own
    capture handler (which would raise on an unprintable message)."""
    isolated = logging.getLogger("agentcron.test.isolated")
    isolated.propagate = False
    isolated.handlers = [h for h in logging.getLogger().handlers if getattr(h, "_agentcron", False)]
    return isolated


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def json_lines(out: io.StringIO) -> list[dict[str, object]]:
    text = out.getvalue()
    text.encode("utf-8")  # every line can be written to a UTF-8 file
    lines = text.split("\n")
    assert lines[-1] == ""
    # str.splitlines also breaks at U+2028, NEL, ...: the lines must survive it too.
    assert text.splitlines() == lines[:-1]
    return [json.loads(line) for line in lines[:-1]]


def json_stream() -> io.StringIO:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out)
    return out


HOSTILE = "a\nb\r\x00\x1b[31mred\x85nel\u2028ls\u2029ps\ud800lone\x9bcsi"


def test_a_json_line_stays_one_valid_line_whatever_the_message_carries() -> None:
    out = json_stream()
    log.warning("job %s", HOSTILE, extra={"job_name": HOSTILE, HOSTILE: 1})
    [line] = json_lines(out)
    assert line["message"] == f"job {HOSTILE}"
    assert line["job_name"] == HOSTILE


def test_a_message_whose_argument_cannot_be_printed_is_still_logged() -> None:
    out = json_stream()
    agentcron_only_logger().warning("value %s", Unprintable())
    [line] = json_lines(out)
    assert "value %s" in str(line["message"])


def test_an_extra_value_that_cannot_be_printed_or_serialised_keeps_the_line() -> None:
    out = json_stream()
    loop: list[object] = []
    loop.append(loop)
    log.warning(
        "ok",
        extra={
            "bad": Unprintable(),
            "loop": loop,
            "nan": float("nan"),
            "key": {(1, 2): "tuple key"},
        },
    )
    [line] = json_lines(out)
    assert line["message"] == "ok"
    assert "unprintable" in str(line["bad"])
    assert line["nan"] == "nan"
    assert line["key"] == {"(1, 2)": "tuple key"}


def test_an_extra_field_cannot_overwrite_the_level_or_the_message_of_a_json_line() -> None:
    out = json_stream()
    log.warning("real", extra={"level": "debug", "logger": "forged", "time": "then"})
    [line] = json_lines(out)
    assert (line["level"], line["logger"]) == ("warning", "agentcron.test")
    assert line["extra.level"] == "debug"
    assert line["extra.logger"] == "forged"


def test_a_huge_message_is_cut_to_a_bounded_size() -> None:
    out = json_stream()
    log.warning("%s", "x" * 1_000_000, extra={"blob": "y" * 1_000_000})
    [line] = json_lines(out)
    assert len(str(line["message"])) < 100_000
    assert len(str(line["blob"])) < 100_000
    assert str(line["message"]).endswith(" more characters]")


def test_a_job_name_cannot_forge_a_text_log_line() -> None:
    out = io.StringIO()
    configure_logging(fmt="text", stream=out)
    name = "nightly\n2026-01-01 00:00:00,000 ERROR   agentcron: \x1b[2Jforged"
    log.warning("job %s fired", name)
    [line] = out.getvalue().splitlines()
    assert "nightly\\n2026-01-01" in line
    assert "\\x1b[2Jforged" in line
    assert "\x1b" not in line


def test_a_text_traceback_is_indented_so_its_message_cannot_forge_a_line() -> None:
    out = io.StringIO()
    configure_logging(fmt="text", stream=out)
    try:
        raise ValueError("boom\n2026-01-01 00:00:00,000 ERROR   agentcron: forged")
    except ValueError:
        log.exception("job failed")
    first, *rest = out.getvalue().splitlines()
    assert first.endswith("agentcron.test: job failed")
    assert rest
    assert all(line.startswith("  | ") for line in rest)


def test_a_text_message_that_cannot_be_printed_is_still_logged() -> None:
    out = io.StringIO()
    configure_logging(fmt="text", stream=out)
    agentcron_only_logger().warning(Unprintable())  # type: ignore[arg-type]
    assert "unprintable Unprintable" in out.getvalue()


def test_a_lone_surrogate_in_a_message_reaches_the_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "agentcron.log"
    configure_logging(fmt="json", stream=io.StringIO(), log_file=log_file)
    log.warning("bad \ud800 text")
    [line] = log_file.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["message"] == "bad \ud800 text"


def test_a_log_file_whose_directory_cannot_be_created_does_not_stop_the_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, log_file=blocker / "logs" / "agentcron.log")
    log.warning("first")
    log.warning("second")
    lines = json_lines(out)
    assert [line["message"] for line in lines if line["logger"] == "agentcron.test"] == [
        "first",
        "second",
    ]
    warnings = [line for line in lines if line["logger"] == "agentcron.logs"]
    assert len(warnings) == 1
    assert "cannot write log file" in str(warnings[0]["message"])
    assert capsys.readouterr().err == ""


def test_a_full_disk_drops_file_lines_without_a_traceback_on_the_console(
    capsys: pytest.CaptureFixture[str],
) -> None:
    full = Path("/dev/full")
    if not full.exists() and os.environ.get("CI") != "true":  # CI runs on Linux: it must run
        pytest.skip("no /dev/full here (Linux only)")
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, log_file=full)
    for i in range(3):
        log.warning("line %d", i)
    lines = json_lines(out)
    assert len([line for line in lines if line["logger"] == "agentcron.logs"]) == 1
    assert capsys.readouterr().err == ""


def test_a_log_directory_that_disappears_is_created_again(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    log_file = log_dir / "agentcron.log"
    configure_logging(fmt="json", stream=io.StringIO(), log_file=log_file, max_bytes=300)
    log.warning("before")
    log_file.unlink()
    log_dir.rmdir()
    for i in range(5):  # the next rollover reopens the file
        log.warning("after %d with some padding to pass the size limit", i)
    assert log_file.exists()
    assert "after 4" in log_file.read_text(encoding="utf-8")


def test_the_log_file_says_when_it_is_writable_again(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("")
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, log_file=blocker / "agentcron.log")
    log.warning("lost")
    blocker.unlink()
    log.warning("kept")
    notes = [str(line["message"]) for line in json_lines(out) if line["logger"] == "agentcron.logs"]
    assert len(notes) == 2
    assert "writable again; 1 lines were lost" in notes[1]
    assert "kept" in (blocker / "agentcron.log").read_text(encoding="utf-8")
