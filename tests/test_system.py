"""Pieces of `agentcron run`: the preset's jobs and policies, how store changes reach a
running scheduler, and (with real daemons) start-up."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentcron.config import load_settings
from agentcron.engine import Scheduler
from agentcron.jobs import build_job, job_to_definition
from agentcron.models import StoredJob
from agentcron.presets import AGENT_LOOPS
from agentcron.store.base import StoreError
from agentcron.store.memory import MemoryStore
from agentcron.system import (
    AgentcronSystem,
    StartupError,
    preset_entries,
    sync_jobs_from_store,
)
from agentcron.testing import VirtualClock
from helpers.polling import wait_for

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_the_preset_takes_its_policies_from_the_settings() -> None:
    settings = load_settings(
        environ={"AGENT_LOOP_TIMEOUT": "120000", "AGENT_LOOP_RETRY_ATTEMPTS": "2"}, env_file=None
    )
    entries = preset_entries(settings, {})
    assert [e[0] for e in entries] == [loop.id for loop in AGENT_LOOPS]
    for job_id, trigger, handler, options in entries:
        job = build_job(job_id, trigger=trigger, handler=handler, **options)
        assert job.timeout_s == 120.0
        assert job.retry.max_attempts == 2
        assert job.overlap.policy == "skip"
        assert job.concurrency_group == "agent-loops"
        assert "agent-loop" in job.tags


def test_a_configured_handler_replaces_the_placeholder_of_an_integration_loop() -> None:
    settings = load_settings(environ={}, env_file=None)
    entries = {e[0]: e for e in preset_entries(settings, {"loop-gmail-sync": "os:getcwd"})}
    assert entries["loop-gmail-sync"][2] == "os:getcwd"
    assert "enabled" not in entries["loop-gmail-sync"][3]
    assert entries["loop-twilio-status"][3]["disabled_reason"] == "no handler configured"


def test_jobs_added_to_the_daemons_scheduler_get_the_settings_retry_and_overlap(
    tmp_path: Path,
) -> None:
    # Jobs of agentcron.toml had them; jobs added through the dashboard's API did not.
    settings = load_settings(
        environ={"RETRY_MAX_ATTEMPTS": "4", "OVERLAP_STRATEGY": "queue"}, env_file=None
    )
    sched = AgentcronSystem(settings=settings)._build_scheduler(MemoryStore(), tmp_path)
    job = sched.add_job("from-the-api", trigger="0 0 1 1 *", handler="os:getcwd")
    assert (job.retry.max_attempts, job.overlap.policy) == (4, "queue")
    own = sched.add_job("own", trigger="0 0 1 1 *", handler="os:getcwd", retry=1)
    assert own.retry.max_attempts == 1


def stored(job_id: str, trigger: str, **options: object) -> StoredJob:
    job = build_job(job_id, trigger=trigger, handler="os:getcwd", **options)
    return StoredJob(id=job_id, definition=job_to_definition(job))


async def test_store_changes_reach_a_running_scheduler() -> None:
    store = MemoryStore()
    clock = VirtualClock(T0)
    await store.save_job(stored("keep", "0 * * * *"), actor="test")
    await store.save_job(stored("change", "0 * * * *"), actor="test")
    await store.save_job(stored("drop", "0 * * * *"), actor="test")
    sched = Scheduler(store=store, clock=clock, node_id="n")
    async with sched:
        assert sorted(v.id for v in sched.jobs()) == ["change", "drop", "keep"]
        await store.save_job(stored("change", "*/5 * * * *"), actor="cli")
        await store.delete_job("drop", actor="cli")
        await store.save_job(stored("new", "0 0 * * *"), actor="cli")
        await store.set_paused("keep", True, note="travelling", actor="cli")
        changed = await sync_jobs_from_store(sched, store)
        views = {v.id: v for v in sched.jobs()}
        assert changed == 3
        assert sorted(views) == ["change", "keep", "new"]
        assert views["change"].job.trigger.to_dict()["expr"] == "*/5 * * * *"
        assert views["change"].next_run == datetime(2026, 11, 26, 12, 5, tzinfo=UTC)
        assert views["keep"].paused and views["keep"].pause_note == "travelling"
        assert await sync_jobs_from_store(sched, store) == 0
        await sched.stop(grace_s=0)


SIGTERM_WHILE_STARTING = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from agentcron.config import load_settings
    from agentcron.system import AgentcronSystem

    class SignalledWhileStarting(AgentcronSystem):
        async def _start_health(self, *args, **kwargs):
            # The scheduler is already firing; the rest of start-up has not run yet.
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0)
            return await super()._start_health(*args, **kwargs)

    settings = load_settings(
        environ={"SCHEDULER_DATA_DIR": sys.argv[1]}, env_file=None,
    )
    asyncio.run(SignalledWhileStarting(settings, dashboard=False).serve())
    print("stopped gracefully")
    """
)


def test_a_sigterm_while_agentcron_run_starts_stops_it_gracefully(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SIGTERM_WHILE_STARTING, str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "stopped gracefully" in proc.stdout


async def test_a_reload_the_store_refuses_is_one_logged_line_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Before, the error escaped `reload` (a traceback in the log) after the file's removed
    # jobs had already been deleted from the store.
    config = tmp_path / "agentcron.toml"
    config.write_text('[[jobs]]\nid = "a"\ntrigger = "0 * * * *"\ncallable = "os:getcwd"\n')
    settings = load_settings(environ={"SCHEDULER_DATA_DIR": str(tmp_path)}, env_file=None)
    system = AgentcronSystem(settings=settings, config_path=config, presets=("agent-loops",))

    class FullDisk(MemoryStore):
        """A store whose job writes fail once `full` (the disk filled up meanwhile)."""

        full = False

        async def save_job(self, *args: Any, **kwargs: Any) -> StoredJob:
            if self.full:
                raise StoreError("disk full")
            return await super().save_job(*args, **kwargs)

    store = FullDisk()
    job_file = system._load_job_file()
    await system._write_jobs(store, job_file)
    before = {s.id: s.definition for s in await store.list_jobs()}
    sched = system._build_scheduler(store, tmp_path)
    system.store, system.scheduler = store, sched
    async with sched:
        config.write_text('[[jobs]]\nid = "b"\ntrigger = "0 * * * *"\ncallable = "os:getcwd"\n')
        store.full = True
        assert await system.reload() is False
        assert [r.exc_info for r in caplog.records if r.levelname == "ERROR"] == [None]
        assert "disk full" in caplog.text
        assert {s.id: s.definition for s in await store.list_jobs()} == before
        assert "a" in {v.id for v in sched.jobs()}
        await sched.stop(grace_s=0)


def test_a_job_of_the_file_with_the_id_of_a_preset_job_is_refused(tmp_path: Path) -> None:
    # Before, the preset's job silently replaced the file's (same id, written after it).
    config = tmp_path / "agentcron.toml"
    config.write_text(
        '[[jobs]]\nid = "ok"\ntrigger = "0 * * * *"\ncommand = ["true"]\n'
        '[[jobs]]\nid = "loop-heartbeat"\ntrigger = "0 * * * *"\ncommand = ["true"]\n'
    )
    settings = load_settings(environ={}, env_file=None)
    system = AgentcronSystem(settings=settings, config_path=config, presets=("agent-loops",))
    with pytest.raises(StartupError) as info:
        system._load_job_file()
    message = str(info.value)
    assert "jobs[1] ('loop-heartbeat')" in message and "agent-loops" in message
    assert "\n" not in message
    assert AgentcronSystem(settings=settings, config_path=config)._load_job_file().jobs


AGENTCRON_RUN = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from agentcron.config import load_settings
    from agentcron.system import AgentcronSystem

    settings = load_settings(environ={"SCHEDULER_DATA_DIR": sys.argv[1]}, env_file=None)
    system = AgentcronSystem(
        settings, config_path=Path(sys.argv[2]), dashboard=False, once=sys.argv[3] == "once"
    )
    asyncio.run(system.serve())
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_a_command_left_running_by_a_killed_daemon_is_killed_when_it_starts_again(
    tmp_path: Path,
) -> None:
    # Before, the command lived on after the daemon's SIGKILL (re-parented to init), and
    # the restarted daemon retried its run while it still ran: the occurrence ran twice.
    data, pids = tmp_path / "data", tmp_path / "pids"
    # The first run starts `sh` and a background `sleep`; later runs have nothing to do.
    script = (
        '[ -e "$0.done" ] && exit 0; : > "$0.done"; sleep 1000 &'
        ' echo "$$ $!" > "$0.tmp" && mv "$0.tmp" "$0"; wait'
    )
    config = tmp_path / "agentcron.toml"
    config.write_text(
        '[[jobs]]\nid = "slow"\ntrigger = "@reboot"\n'
        f"command = {json.dumps(['sh', '-c', script, str(pids)])}\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-c", AGENTCRON_RUN, str(data), str(config), "serve"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tree: list[psutil.Process] = []
    try:
        wait_for(pids.exists, timeout_s=60)
        tree = [psutil.Process(int(pid)) for pid in pids.read_text().split()]
        # Recorded as soon as the spawn returns (the command may be quicker than that).
        wait_for(lambda: _one_whole_record(data / "children"), timeout_s=60)
        first.kill()
        first.wait()
        assert all(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree)

        second = subprocess.run(
            [sys.executable, "-c", AGENTCRON_RUN, str(data), str(config), "once"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

        assert second.returncode == 0, second.stderr
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree)
        assert "of job slow: its daemon died" in second.stderr
        assert list((data / "children").glob("*.json")) == []
    finally:
        first.kill()
        first.wait()
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                proc.kill()


def _one_whole_record(directory: Path) -> bool:
    try:
        (path,) = directory.glob("*.json")
        json.loads(path.read_text())
    except (ValueError, OSError):
        return False
    return True
