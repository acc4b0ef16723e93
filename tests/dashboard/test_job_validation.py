"""What `POST /api/jobs` and `PATCH /api/jobs/{id}` check before they change a job, over
real HTTP: a schedule is checked for a fire after now in the zone the job will use, and a
command that no run could start is refused up front."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from tests.dashboard import handlers
from tests.dashboard.conftest import TOKEN, auth, serve

from agentcron import Scheduler
from agentcron.dashboard import DashboardSettings, create_app
from agentcron.store.memory import MemoryStore
from agentcron.testing import VirtualClock

#: 16:51 UTC on 27 November 2026 is 08:51 PST on the 27th in Los Angeles and 06:51 on the
#: 28th in Kiritimati (UTC+14): noon on the 27th is still to come in one and past in the other.
NOW = datetime(2026, 11, 27, 16, 51, tzinfo=UTC)
NOON_NOV_27_2026 = "0 0 12 27 11 * 2026"
EVENING_NOV_27_2026 = "0 0 20 27 11 * 2026"


@pytest.fixture
async def zoned() -> AsyncIterator[tuple[Scheduler, httpx.AsyncClient]]:
    """A started scheduler on a virtual clock at `NOW`, with a job in each zone, served by
    uvicorn on loopback; its default zone is Pacific/Kiritimati."""
    sched = Scheduler(
        store=MemoryStore(), clock=VirtualClock(NOW), node_id="zones",
        timezone="Pacific/Kiritimati",
    )  # fmt: skip
    sched.add_job("la", trigger="0 9 * * *", handler=handlers.ok, timezone="America/Los_Angeles")
    sched.add_job("kiri", trigger="0 9 * * *", handler=handlers.ok, timezone="Pacific/Kiritimati")
    async with sched, serve(create_app(sched, DashboardSettings(auth_token=TOKEN))) as live:
        async with httpx.AsyncClient(base_url=live.url, headers=auth()) as client:
            yield sched, client


async def test_a_new_trigger_is_checked_in_the_jobs_stored_zone_when_the_patch_gives_none(
    zoned: tuple[Scheduler, httpx.AsyncClient],
) -> None:
    sched, client = zoned
    # Noon PST is still to come: was a 422 "(UTC) never fires after ..." (checked in UTC).
    patched = await client.patch("/api/jobs/la", json={"trigger": NOON_NOV_27_2026})
    assert patched.status_code == 200, patched.text
    assert patched.json()["next_run"] == "2026-11-27T20:00:00Z"
    assert patched.json()["timezone"] == "America/Los_Angeles"
    # 20:00 in Kiritimati was 06:00 UTC, hours ago: was a 200 for a job that never fires.
    refused = await client.patch("/api/jobs/kiri", json={"trigger": EVENING_NOV_27_2026})
    assert refused.status_code == 422, refused.text
    assert "never fires after 2026-11-27T16:51:00+00:00" in refused.json()["detail"]
    assert sched.job("kiri").job.trigger.expr == "0 9 * * *"  # unchanged
    # A zone given with the trigger wins over the stored one.
    both = {"trigger": EVENING_NOV_27_2026, "timezone": "UTC"}
    assert (await client.patch("/api/jobs/kiri", json=both)).status_code == 200


async def test_a_new_zone_alone_is_checked_with_the_jobs_cron_expression(
    zoned: tuple[Scheduler, httpx.AsyncClient],
) -> None:
    sched, client = zoned
    assert (await client.patch("/api/jobs/la", json={"trigger": NOON_NOV_27_2026})).is_success
    # The same noon in Kiritimati was 22:00 UTC the day before: moving the job there would
    # leave it with no fire at all.
    moved = await client.patch("/api/jobs/la", json={"timezone": "Pacific/Kiritimati"})
    assert moved.status_code == 422, moved.text
    assert "never fires" in moved.json()["detail"]
    assert sched.job("la").job.timezone == "America/Los_Angeles"
    new_york = await client.patch("/api/jobs/la", json={"timezone": "America/New_York"})
    assert new_york.status_code == 200 and new_york.json()["next_run"] == "2026-11-27T17:00:00Z"


async def test_a_new_job_without_a_zone_is_checked_in_the_schedulers_default_zone(
    zoned: tuple[Scheduler, httpx.AsyncClient],
) -> None:
    _, client = zoned
    body = {"id": "new", "trigger": EVENING_NOV_27_2026, "callable": "tests.dashboard.handlers:ok"}
    # The job would get Pacific/Kiritimati, where that evening is past: was a 201 (UTC).
    refused = await client.post("/api/jobs", json=body)
    assert refused.status_code == 422, refused.text
    assert "never fires" in refused.json()["detail"]
    assert (await client.get("/api/jobs/new")).status_code == 404
    created = await client.post("/api/jobs", json={**body, "timezone": "UTC"})
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([""], "the program (first argument) is empty"),
        (["   ", "-l"], "the program (first argument) is empty"),
    ],
)
async def test_a_command_whose_program_is_empty_is_refused_with_one_line(
    zoned: tuple[Scheduler, httpx.AsyncClient], argv: list[str], message: str
) -> None:
    _, client = zoned
    body = {"id": "emptycmd", "trigger": "*/10 * * * *", "command": argv}
    response = await client.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text  # was 201, and every run failed
    detail = response.json()["detail"]
    assert isinstance(detail, str) and message in detail and "\n" not in detail
    assert (await client.get("/api/jobs/emptycmd")).status_code == 404
