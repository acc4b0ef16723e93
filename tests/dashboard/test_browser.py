"""The page in a real browser: Debian's Chromium driven by Playwright, against uvicorn."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect
from tests.dashboard import handlers
from tests.dashboard.conftest import TOKEN, XSS_NAME, LiveServer

from agentcron import RunContext, Scheduler
from agentcron.models import NodeHeartbeat, RunRecord, RunStatus, new_run_id

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"

expect.set_options(timeout=10_000)
HAVE_CHROMIUM = Path(CHROMIUM).exists()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert HAVE_CHROMIUM, "Chromium is missing: apt-get install chromium (make test does)"
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class Watched:
    """A page plus every console error, page error and dialog it produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    async def _dialog(self, dialog: object) -> None:
        self.problems.append("a dialog opened (script ran)")
        await dialog.dismiss()  # type: ignore[attr-defined]


async def open_logged_in(browser: Browser, live: LiveServer, width: int = 1400) -> Watched:
    page = await browser.new_page(viewport={"width": width, "height": 1000})
    watched = Watched(page)
    await page.goto(live.url)
    await page.fill("#token", TOKEN)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#live")).to_have_text("live")
    return watched


def row(page: Page, job_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#jobs-table tbody tr[data-job-id="{job_id}"]')


async def test_a_person_logs_in_runs_a_job_and_watches_its_row_update_live(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    gate = asyncio.Event()

    async def slow_backup() -> str | None:
        await gate.wait()
        return "copied 3 files"

    sched.update("backup", handler=slow_backup)
    watched = await open_logged_in(browser, live)
    page = watched.page
    await expect(page.locator("#jobs-table tbody tr")).to_have_count(3)
    await expect(row(page, "backup").locator(".job-status")).to_have_text("active")
    await expect(page.locator("#health-badge")).to_have_text("healthy")  # idle is healthy

    await row(page, "backup").get_by_role("button", name="Run").click()
    await expect(row(page, "backup").locator(".job-status")).to_have_text("running")
    await expect(page.locator("#event-feed li").first).to_contain_text("run.started")
    gate.set()
    await expect(row(page, "backup").locator(".job-last")).to_contain_text("succeeded")
    await expect(row(page, "backup").locator(".job-status")).to_have_text("active")
    await expect(page.locator("#event-feed")).to_contain_text("run.succeeded")
    assert watched.problems == []


async def test_a_running_jobs_progress_shows_live_in_its_row_and_page_until_it_ends(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    steps: asyncio.Queue[float | None] = asyncio.Queue()

    async def import_mail(ctx: RunContext) -> None:
        while (pct := await steps.get()) is not None:
            ctx.progress(pct)

    sched.update("backup", handler=import_mail)
    watched = await open_logged_in(browser, live)
    page = watched.page
    status = row(page, "backup").locator(".job-status")
    bar = row(page, "backup").locator("progress")
    await expect(status).to_have_text("active")
    steps.put_nowait(42)
    await row(page, "backup").get_by_role("button", name="Run").click()
    await expect(status).to_have_text("running · 42 %")
    await expect(bar).to_have_attribute("value", "42")
    steps.put_nowait(77.5)  # only its run.progress event tells the page
    await expect(status).to_have_text("running · 77 %")
    feed = page.locator("#event-feed li", has_text="run.progress")
    await expect(feed).to_have_count(1)  # one line per run, the newest
    await expect(feed).to_contain_text("backup · test-node · 77 %")

    await row(page, "backup").locator("a.job-name").click()
    await expect(page.locator("#job-status-badge")).to_have_text("running")
    await expect(page.locator("#job-progress")).to_have_text("77 %")
    steps.put_nowait(90)
    await expect(page.locator("#job-progress")).to_have_text("90 %")
    await expect(page.locator("#job-progress-bar")).to_have_js_property("value", 90)
    steps.put_nowait(None)  # the run ends
    await expect(page.locator("#job-status-badge")).to_have_text("active")
    await expect(page.locator("#job-progress")).to_be_hidden()
    await page.click("#back-link")
    await expect(row(page, "backup").locator(".job-last")).to_contain_text("succeeded")
    await expect(status).to_have_text("active")
    await expect(bar).to_have_count(0)
    assert watched.problems == []


async def test_pause_and_resume_from_the_jobs_table_and_the_job_page(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    watched = await open_logged_in(browser, live)
    page = watched.page
    await row(page, "digest").get_by_role("button", name="Pause").click()
    await expect(row(page, "digest").locator(".job-status")).to_contain_text("paused")
    assert sched.job("digest").paused
    await row(page, "digest").get_by_role("button", name="Resume").click()
    await expect(row(page, "digest").locator(".job-status")).to_have_text("active")
    assert not sched.job("digest").paused

    await row(page, "digest").locator("a.job-name").click()
    await expect(page.locator("#job-view")).to_be_visible()
    await expect(page.locator("#job-next li")).to_have_count(10)
    await page.fill("#pause-note", "travelling")
    await page.click("#job-pause")
    await expect(page.locator("#job-note")).to_have_text("Paused: travelling")
    assert sched.job("digest").pause_note == "travelling"
    await page.click("#job-resume")
    await expect(page.locator("#job-note")).to_be_hidden()
    assert watched.problems == []


async def test_a_jobs_history_shows_runs_errors_and_a_duration_chart(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    now = sched.clock.now()
    for i, status in enumerate([RunStatus.succeeded, RunStatus.failed, RunStatus.skipped]):
        at = now - timedelta(hours=3 - i)
        await sched.store.record_run(RunRecord(
            run_id=new_run_id(), job_id="backup", scheduled_for=at, status=status, attempt=i + 1,
            started_at=at, finished_at=at + timedelta(seconds=5 + i),
            error="exit status 3" if status is RunStatus.failed else None,
            skip_reason="overlap" if status is RunStatus.skipped else None,
            output_tail="rsync: done" if status is RunStatus.succeeded else None,
        ))  # fmt: skip
    watched = await open_logged_in(browser, live)
    page = watched.page
    await page.goto(f"{live.url}/#/job/backup")
    await expect(page.locator("#job-title")).to_have_text("Nightly backup")
    history = page.locator("#runs-table tbody tr")
    await expect(history).to_have_count(3)
    await expect(history.nth(0)).to_contain_text("skipped: overlap")
    await expect(history.nth(1)).to_contain_text("exit status 3")
    await expect(history.nth(2)).to_contain_text("rsync: done")
    await expect(page.locator("#job-chart svg rect")).to_have_count(3)
    await page.click("#back-link")
    await expect(page.locator("#overview-view")).to_be_visible()
    assert watched.problems == []


async def test_a_job_named_like_html_is_shown_as_text_and_never_runs(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    watched = await open_logged_in(browser, live)
    page = watched.page
    await expect(row(page, "xss").locator("a.job-name")).to_have_text(XSS_NAME)
    await expect(row(page, "xss")).to_contain_text("<b>tag</b>")
    assert await page.locator("img").count() == 0
    assert await page.locator("#jobs-table b").count() == 0
    await row(page, "xss").get_by_role("button", name="Pause").click()
    await expect(page.locator("#event-feed")).to_contain_text("job.paused")
    await page.goto(f"{live.url}/#/job/xss")
    await expect(page.locator("#job-title")).to_have_text(XSS_NAME)
    assert await page.locator("img").count() == 0
    assert watched.problems == []


async def test_a_wrong_token_keeps_the_login_form_with_a_message(
    browser: Browser, live: LiveServer
) -> None:
    page = await browser.new_page()
    watched = Watched(page)
    await page.goto(live.url)
    await page.fill("#token", "not-the-token-at-all")
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("The token was not accepted.")
    await expect(page.locator("#app-view")).to_be_hidden()
    # The browser logs the 403 itself; nothing else may go wrong.
    assert all("403" in p for p in watched.problems)


async def test_the_cron_playground_shows_errors_and_next_runs(
    browser: Browser, live: LiveServer
) -> None:
    watched = await open_logged_in(browser, live)
    page = watched.page
    await page.fill("#cron-expr", "61 * * * *")
    await page.click("#cron-form button")
    await expect(page.locator("#cron-result")).to_contain_text("minute field: 61")
    await page.fill("#cron-expr", "0 9 * * MON-FRI")
    await page.click("#cron-form button")
    await expect(page.locator("#cron-result li")).to_have_count(10)
    assert watched.problems == []


async def test_a_screenshot_of_the_main_page(
    browser: Browser, live: LiveServer, sched: Scheduler, tmp_path: Path, app: FastAPI
) -> None:
    """Renders a realistic page; AGENTCRON_UPDATE_SCREENSHOT=1 copies it to docs/."""
    now = sched.clock.now()
    ok = handlers.ok
    sched.add_job("heartbeat", trigger="*/30 * * * * *", handler=ok, name="Agent heartbeat",
                  tags=["core"])  # fmt: skip
    sched.add_job("inbox", trigger="*/15 * * * *", handler=ok, name="Check inbox",
                  tags=["mail", "agent"])  # fmt: skip
    sched.add_job("rotate", trigger="0 3 * * *", handler=ok, name="Rotate logs",
                  tags=["maintenance"])  # fmt: skip
    sched.pause("rotate", note="disk migration until Friday")
    statuses = [RunStatus.succeeded] * 8 + [RunStatus.failed, RunStatus.skipped]
    for job_id, step in (("heartbeat", 1), ("inbox", 2), ("digest", 6), ("backup", 12)):
        for i in range(0, 24, step):
            at = now - timedelta(hours=i, minutes=7)
            status = (
                statuses[(i // step) % len(statuses)]
                if job_id != "heartbeat"
                else RunStatus.succeeded
            )
            await sched.store.record_run(RunRecord(
                run_id=new_run_id(), job_id=job_id, scheduled_for=at, status=status,
                started_at=at, finished_at=at + timedelta(seconds=2 + (i * 7) % 30),
                error="HTTP 503 from mail server" if status is RunStatus.failed else None,
                skip_reason="overlap" if status is RunStatus.skipped else None,
            ))  # fmt: skip
    await sched.store.write_heartbeat(NodeHeartbeat(
        node_id="laptop-1234", sequence=420, sent_at=now, host="laptop", pid=1234, interval_s=30,
    ))  # fmt: skip
    await sched.store.write_heartbeat(NodeHeartbeat(
        node_id="pi-worker", sequence=77, sent_at=now - timedelta(seconds=50), host="raspberrypi",
        pid=811, interval_s=30, status="degraded",
    ))  # fmt: skip
    for job in sched.jobs():  # runs written straight to the store publish no event
        app.state.dashboard.cache.forget(job.id)
    watched = await open_logged_in(browser, live)
    page = watched.page
    await expect(page.locator("#jobs-table tbody tr")).to_have_count(6)
    await expect(page.locator("#timeline svg")).to_be_visible()
    await expect(page.locator("#queues-table tbody tr")).to_have_count(1)
    await page.fill("#cron-expr", "0 9 * * MON-FRI")
    await page.click("#cron-form button")
    await expect(page.locator("#cron-result li")).to_have_count(10)
    await sched.run_now("inbox")
    # Only inbox's: the heartbeat job fires on the real clock every 30 s, and its events
    # joined the feed whenever the test crossed such a second.
    await expect(page.locator("#event-feed li", has_text="inbox")).to_have_count(2)
    out = tmp_path / "dashboard.png"
    await page.screenshot(path=str(out), full_page=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("AGENTCRON_UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(out, SCREENSHOT)
    assert watched.problems == []


async def test_the_queues_and_nodes_panels_show_counts_and_pause_a_queue(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    await sched.store.write_heartbeat(NodeHeartbeat(
        node_id="laptop-1", sequence=3, sent_at=sched.clock.now(), host="laptop", interval_s=30,
    ))  # fmt: skip
    watched = await open_logged_in(browser, live)
    page = watched.page
    queue = page.locator('#queues-table tbody tr[data-queue="emails"]')
    await expect(queue).to_contain_text("emails")
    await expect(queue.locator("td").nth(1)).to_have_text("3")  # waiting
    await queue.get_by_role("button", name="Pause").click()
    await expect(queue).to_contain_text("paused")
    await queue.get_by_role("button", name="Resume").click()
    await expect(queue.get_by_role("button", name="Pause")).to_be_visible()
    await expect(page.locator("#nodes-table tbody tr")).to_contain_text("laptop-1")
    await expect(page.locator("#card-nodes")).to_have_text("1 / 1")
    assert watched.problems == []


async def test_jobs_with_dot_ids_can_be_opened_paused_and_run_from_the_page(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    for job_id, name in (("..", "Dot dot"), (".", "Dot"), ("my job ü", "Umlaut")):
        sched.add_job(job_id, trigger="0 0 1 1 *", handler=handlers.ok, name=name)
    watched = await open_logged_in(browser, live)
    page = watched.page
    for job_id in ("..", ".", "my job ü"):
        await row(page, job_id).get_by_role("button", name="Pause").click()
        await expect(row(page, job_id).locator(".job-status")).to_have_text("paused")
        assert sched.job(job_id).paused
        await row(page, job_id).get_by_role("button", name="Run").click()
        await expect(row(page, job_id).locator(".job-last")).to_contain_text("succeeded")
    await row(page, "..").locator("a.job-name").click()
    await expect(page.locator("#job-title")).to_have_text("Dot dot")
    await expect(page.locator("#job-facts")).to_contain_text("..")
    await page.click("#job-resume")
    await expect(page.locator("#job-status-badge")).to_have_text("active")
    assert not sched.job("..").paused
    await page.goto(f"{live.url}/#/job/.")
    await expect(page.locator("#job-title")).to_have_text("Dot")
    assert watched.problems == []


async def test_an_unknown_or_malformed_job_address_shows_an_unknown_job_page(
    browser: Browser, live: LiveServer
) -> None:
    watched = await open_logged_in(browser, live)
    page = watched.page
    await page.goto(f"{live.url}/#/job/backup")
    await expect(page.locator("#job-title")).to_have_text("Nightly backup")
    for address, shown in (("nonexist", '"nonexist"'), ("%", '"%" (not a valid address)')):
        await page.goto(f"{live.url}/#/job/{address}")
        await expect(page.locator("#job-title")).to_have_text("Unknown job")
        await expect(page.locator("#job-missing")).to_have_text(
            f"There is no job with the id {shown}."
        )
        await expect(page.locator("#job-facts")).to_be_empty()
        await expect(page.locator("#job-details")).to_be_hidden()
        await expect(page.locator("#job-run")).to_be_hidden()
        await expect(page.locator("#job-view").get_by_text("Nightly backup")).to_have_count(0)
    await page.goto(f"{live.url}/#/job/backup")
    await expect(page.locator("#job-title")).to_have_text("Nightly backup")
    await expect(page.locator("#job-details")).to_be_visible()
    await expect(page.locator("#job-missing")).to_be_hidden()
    # The browser logs the 404 itself; no script error, no toast.
    assert all("404" in p for p in watched.problems), watched.problems
    await expect(page.locator("#toast")).to_be_hidden()


async def right_edge(page: Page, selector: str) -> float:
    """The largest right edge (CSS px from the viewport's left) of the elements matched."""
    edges = []
    for element in await page.locator(selector).all():
        box = await element.bounding_box()
        assert box is not None, selector
        edges.append(box["x"] + box["width"])
    assert edges, selector
    return max(edges)


async def test_long_ids_names_tags_and_schedules_wrap_so_every_column_stays_on_screen(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    long_id, long_name, long_tag = "i" * 200, "N" * 500, "t" * 100  # the longest allowed
    every_minute = ",".join(str(m) for m in range(60))  # one 169-character cron field
    sched.add_job(long_id, trigger="0 0 1 1 *", handler=handlers.ok, tags=[long_tag])
    sched.add_job("named", trigger="0 0 1 1 *", handler=handlers.ok, name=long_name)
    sched.add_job("minutely", trigger=f"{every_minute} * * * *", handler=handlers.ok)
    sched.pause("named", note="n" * 300)
    width = 1280
    watched = await open_logged_in(browser, live, width=width)
    page = watched.page
    await expect(page.locator("#jobs-table tbody tr")).to_have_count(6)
    # The Name column was 1,576 px wide: Status, Last result and the buttons were off-screen.
    assert await right_edge(page, "#jobs-table th") <= width
    assert await right_edge(page, "#jobs-table td.job-status") <= width
    assert await right_edge(page, "#jobs-table td.job-last") <= width
    assert await right_edge(page, "#jobs-table td.actions button") <= width
    await expect(row(page, long_id).get_by_role("button", name="Run")).to_be_in_viewport()
    await expect(row(page, long_id).locator("a.job-name")).to_have_text(long_id)  # all of it
    await expect(row(page, long_id)).to_contain_text(long_tag)
    # The tag filter took the width of its longest option.
    assert await right_edge(page, "#job-tag") <= width
    assert (await page.locator("#job-tag").bounding_box() or {"width": 0})["width"] <= 320
    assert await page.evaluate("document.documentElement.scrollWidth") <= width

    await page.goto(f"{live.url}/#/job/named")
    await expect(page.locator("#job-title")).to_have_text(long_name)
    assert await right_edge(page, "#job-resume") <= width
    assert await right_edge(page, "#job-facts dd") <= width
    assert await page.evaluate("document.documentElement.scrollWidth") <= width
    assert watched.problems == []


async def test_an_address_with_an_id_too_long_shows_unknown_job_and_no_raw_error(
    browser: Browser, live: LiveServer
) -> None:
    watched = await open_logged_in(browser, live)
    page = watched.page
    await page.goto(f"{live.url}/#/job/backup")
    await expect(page.locator("#job-title")).to_have_text("Nightly backup")
    too_long = "x" * 201  # the API refuses it with a 422 (an id has at most 200 characters)
    await page.goto(f"{live.url}/#/job/{too_long}")
    # Was: an empty title, no message, Run now / Pause / Resume all shown, and a toast of
    # raw JSON ([{"type":"string_too_long",...}]).
    await expect(page.locator("#job-title")).to_have_text("Unknown job")
    await expect(page.locator("#job-missing")).to_have_text(
        f'There is no job with the id "{too_long}" (not a valid job id).'
    )
    for hidden in ("#job-run", "#job-pause", "#job-resume", "#pause-note", "#job-details"):
        await expect(page.locator(hidden)).to_be_hidden()
    await expect(page.locator("#job-facts")).to_be_empty()
    await expect(page.locator("#toast")).to_be_hidden()
    assert all("422" in p for p in watched.problems), watched.problems  # the browser's own log


async def test_a_422_from_the_api_is_shown_as_one_readable_line_not_json(
    browser: Browser, live: LiveServer
) -> None:
    watched = await open_logged_in(browser, live)
    page = watched.page
    await page.fill("#cron-expr", "*" * 501)  # over the 500 characters the API takes
    await page.click("#cron-form button")
    toast = page.locator("#toast")
    await expect(toast).to_have_text("expression: String should have at most 500 characters")
    assert all("422" in p for p in watched.problems), watched.problems


async def test_a_disabled_integration_loop_shows_why_in_its_row_and_page(
    browser: Browser, live: LiveServer, sched: Scheduler
) -> None:
    from tests.dashboard.test_api import _add_unconfigured_loop

    loop = _add_unconfigured_loop(sched)
    watched = await open_logged_in(browser, live)
    page = watched.page
    status = row(page, loop).locator(".job-status")
    await expect(status).to_contain_text("disabled")
    await expect(status).to_contain_text("no handler configured")
    await row(page, loop).locator("a.job-name").click()
    await expect(page.locator("#job-status-badge")).to_have_text("disabled")
    await expect(page.locator("#job-note")).to_have_text("Disabled: no handler configured")
    assert watched.problems == []
