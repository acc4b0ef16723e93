from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from agentcron.logs import configure_logging

pytestmark = pytest.mark.usefixtures("restore_root_logger")


def test_json_lines_carry_the_message_and_extra_fields() -> None:
    out = io.StringIO()
    configure_logging(level="info", fmt="json", stream=out)
    logging.getLogger("agentcron.engine").info("fired %s", "job-1", extra={"job_id": "job-1"})
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert line["message"] == "fired job-1"
    assert line["job_id"] == "job-1"
    assert line["level"] == "info"
    assert line["logger"] == "agentcron.engine"
    assert line["time"].endswith("+00:00")


def test_auto_format_writes_json_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    configure_logging(fmt="auto", stream=out)
    logging.getLogger("agentcron").warning("hello")
    assert json.loads(out.getvalue().strip().splitlines()[-1])["message"] == "hello"


def test_text_format_is_human_readable() -> None:
    out = io.StringIO()
    configure_logging(fmt="text", stream=out)
    logging.getLogger("agentcron").warning("hello there")
    assert "WARNING" in out.getvalue()
    assert "agentcron: hello there" in out.getvalue()


def test_the_log_file_rotates_by_size(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "agentcron.log"
    configure_logging(
        fmt="text", stream=io.StringIO(), log_file=log_file, max_bytes=500, backup_count=2
    )
    for i in range(50):
        logging.getLogger("agentcron").warning("line %d with some padding to fill the file", i)
    assert log_file.exists()
    assert (tmp_path / "logs" / "agentcron.log.1").exists()
    assert not (tmp_path / "logs" / "agentcron.log.3").exists()


def test_configuring_twice_does_not_duplicate_lines() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=io.StringIO())
    configure_logging(fmt="json", stream=out)
    logging.getLogger("agentcron").warning("once")
    assert len(out.getvalue().strip().splitlines()) == 1
