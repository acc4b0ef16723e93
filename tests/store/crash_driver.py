"""A scheduler process for the crash tests: `python crash_driver.py DB LOG`.

Runs `agentcron.Scheduler` on the SQLite file DB with one job firing every second whose
handler (referenced as `crash_driver:tick`, so a restarted process re-creates the job from
the store) appends `start <occurrence> <attempt>` and `done <occurrence> <attempt>` lines to
LOG around 300 ms of work. Prints `ready` once started; SIGTERM stops it gracefully, SIGKILL
is what the test does to it the rest of the time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from agentcron import Retry, Scheduler
from agentcron.store.sqlite import SqliteStore

LOG_ENV = "AGENTCRON_CRASH_LOG"


def _append(line: str) -> None:
    fd = os.open(os.environ[LOG_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def tick(ctx: Any) -> None:
    _append(f"start {ctx.occurrence_key} {ctx.attempt}")
    await asyncio.sleep(0.3)  # the work a SIGKILL may interrupt (noqa: sleep-ok)
    _append(f"done {ctx.occurrence_key} {ctx.attempt}")


async def main(db: str) -> None:
    sched = Scheduler(store=SqliteStore(db), node_id=f"driver-{os.getpid()}", lease_s=1.0)
    sched.add_job(
        "tick",
        trigger="* * * * * *",
        handler="crash_driver:tick",
        retry=Retry(max_attempts=3, strategy="fixed", base_delay=0.0),
    )
    await sched.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await stop.wait()
    await sched.stop(grace_s=5.0)
    await sched.store.close()


if __name__ == "__main__":
    os.environ[LOG_ENV] = sys.argv[2]
    asyncio.run(main(sys.argv[1]))
