"""The log-rotation loop against a logger in use and odd files in the log directory."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import os
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentcron.config import load_settings
from agentcron.handlers.base import RunContext
from agentcron.logs import configure_logging
from agentcron.presets import builtin
from agentcron.store.sqlite import SqliteStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def ctx() -> RunContext:
    return RunContext(
        job_id="loop-log-rotation",
        run_id="r1",
        scheduled_for=NOW,
        attempt=1,
        lateness_s=0.0,
        node_id="n1",
        logger=logging.getLogger("test"),
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    settings = load_settings(environ={"SCHEDULER_DATA_DIR": str(tmp_path)}, env_file=None)
    db = SqliteStore(tmp_path / "scheduler.db")
    await db.open()
    builtin.bind(builtin.Services(store=db, settings=settings))
    yield db
    builtin.unbind()
    await db.close()


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    before = list(root.handlers)
    path = tmp_path / "logs" / "agentcron.log"
    configure_logging(fmt="json", stream=io.StringIO(), log_file=path)
    yield path
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()


def agentcron_file_handler() -> logging.handlers.RotatingFileHandler:
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler) and getattr(h, "_agentcron", False)
    ]
    return handler


@pytest.mark.usefixtures("store")
async def test_log_rotation_rolls_over_while_holding_the_handlers_lock(
    log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logging.getLogger("agentcron").warning("something")
    handler = agentcron_file_handler()
    free_during_rollover: list[bool] = []
    real_rollover = handler.doRollover

    def probe() -> None:
        # Another thread (the one writing records) must not get the lock now.
        assert handler.lock is not None
        got = handler.lock.acquire(blocking=False)
        if got:
            handler.lock.release()
        free_during_rollover.append(got)

    def rollover() -> None:
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        real_rollover()

    monkeypatch.setattr(handler, "doRollover", rollover)
    out = json.loads(await builtin.log_rotation(ctx()))
    assert out["rotated"] == [str(log_file)]
    assert free_during_rollover == [False]


@pytest.mark.usefixtures("store")
async def test_log_rotation_ignores_a_dangling_symlink_among_old_logs(log_file: Path) -> None:
    logging.getLogger("agentcron").warning("something")
    dangling = log_file.parent / "other.log.1"
    os.symlink(log_file.parent / "gone", dangling)
    os.utime(dangling, (0, 0), follow_symlinks=False)
    out = json.loads(await builtin.log_rotation(ctx()))
    assert out["rotated"] == [str(log_file)]
    assert out["deleted"] == ["other.log.1"]
    assert not dangling.is_symlink()
