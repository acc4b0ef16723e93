from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agentcron.alerts.sinks import (
    SIGNATURE_HEADER,
    Alert,
    CommandSink,
    LogSink,
    SinkError,
    WebhookSink,
    sign,
    verify_signature,
)
from agentcron.testing import VirtualClock

from .conftest import T0, LocalHTTP, Script, drive


def an_alert() -> Alert:
    return Alert(
        rule="node_offline",
        kind="node_offline",
        key="n1",
        severity="critical",
        message="node n1 is offline",
        at=T0,
    )


async def test_a_webhook_that_fails_twice_is_retried_with_backoff_until_it_succeeds(
    http: LocalHTTP, clock: VirtualClock
) -> None:
    http.script = Script(statuses=[500, 503])
    sink = WebhookSink("ops", f"{http.url}/hook", clock, secret="s3cret", backoff_s=1.0)
    start = clock.monotonic()
    await drive(clock, sink.send(an_alert()))
    assert len(http.requests) == 3
    assert clock.monotonic() - start == 3.0  # waited 1 s, then 2 s, on the injected clock
    last = http.requests[-1]
    assert last.path == "/hook"
    assert json.loads(last.body)["message"] == "node n1 is offline"
    assert verify_signature("s3cret", last.body, last.headers[SIGNATURE_HEADER])
    assert not verify_signature("other", last.body, last.headers[SIGNATURE_HEADER])


def test_the_signature_is_a_sha256_hmac_of_the_exact_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
    assert sign("k", b"{}") == f"sha256={expected}"
    assert not verify_signature("k", b"{}", None)


async def test_without_a_secret_no_signature_is_sent(http: LocalHTTP, clock: VirtualClock) -> None:
    await WebhookSink("ops", http.url, clock).send(an_alert())
    assert SIGNATURE_HEADER not in http.requests[0].headers


async def test_a_client_error_is_not_retried(http: LocalHTTP, clock: VirtualClock) -> None:
    http.script = Script(statuses=[404])
    with pytest.raises(SinkError, match="HTTP 404"):
        await WebhookSink("ops", http.url, clock, retries=3).send(an_alert())
    assert len(http.requests) == 1


async def test_a_server_that_keeps_failing_gives_up_after_its_retries(
    http: LocalHTTP, clock: VirtualClock
) -> None:
    http.script = Script(statuses=[500] * 10)
    sink = WebhookSink("ops", http.url, clock, retries=2, backoff_s=5, max_backoff_s=6)
    start = clock.monotonic()
    with pytest.raises(SinkError, match="after 3 attempt"):
        await drive(clock, sink.send(an_alert()))
    assert len(http.requests) == 3
    assert clock.monotonic() - start == 11.0  # 5 s, then 10 s capped at 6 s


async def test_a_failed_webhook_names_its_host_but_not_the_secret_in_its_url(
    http: LocalHTTP, clock: VirtualClock
) -> None:
    # The path of a Slack or Teams incoming webhook is its credential: errors go to logs.
    http.script = Script(statuses=[403])
    url = http.url.replace("://", "://user:pw@").rstrip("/") + "/services/T0/B0/s3cr3t?k=v"
    with pytest.raises(SinkError) as info:
        await WebhookSink("ops", url, clock, retries=0).send(an_alert())
    message = str(info.value)
    assert "HTTP 403" in message and "127.0.0.1" in message
    assert not any(secret in message for secret in ("s3cr3t", "k=v", "pw", "services"))


async def test_a_slow_server_times_out(http: LocalHTTP, clock: VirtualClock) -> None:
    http.script = Script(hold=threading.Event())
    sink = WebhookSink("ops", http.url, clock, timeout_s=0.2, retries=0)
    with pytest.raises(SinkError, match="Timeout"):
        await sink.send(an_alert())


async def test_an_unreachable_webhook_fails_after_retries(
    closed_port: int, clock: VirtualClock
) -> None:
    sink = WebhookSink("ops", f"http://127.0.0.1:{closed_port}/", clock, retries=1)
    with pytest.raises(SinkError, match="ConnectError"):
        await drive(clock, sink.send(an_alert()))


def test_webhook_settings_are_validated_with_the_sink_name(clock: VirtualClock) -> None:
    with pytest.raises(ValueError, match="'ops'.*url"):
        WebhookSink("ops", "ftp://x", clock)
    with pytest.raises(ValueError, match="'ops'.*retries"):
        WebhookSink("ops", "http://127.0.0.1/", clock, retries=-1)
    # Accepted before: each alert then retried for ever, one task per alert while the
    # hook was down, and the 1,025th wait raised OverflowError.
    with pytest.raises(ValueError, match="'ops': retries must be 0-100"):
        WebhookSink("ops", "http://127.0.0.1/", clock, retries=10**9)
    for backoff in ({"backoff_s": 1e300}, {"max_backoff_s": math.inf}, {"backoff_s": math.nan}):
        with pytest.raises(ValueError, match="'ops': backoff and max_backoff must be"):
            WebhookSink("ops", "http://127.0.0.1/", clock, **backoff)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://ops:hunter2@hooks.example.org/services/T0/B0/SECRETPATH",
        "https://ops:hunter2@hooks.example.org:99999/services/T0/B0/SECRETPATH",
        "https:///services/T0/B0/SECRETPATH?token=hunter2",
        "https://hooks.example.org:x/services/SECRETPATH",
    ],
)
def test_a_refused_webhook_url_is_named_without_its_path_query_or_password(
    clock: VirtualClock, url: str
) -> None:
    # Before, the whole URL was quoted: a Slack or Teams hook's path is its secret.
    with pytest.raises(ValueError, match="webhook sink 'ops'") as info:
        WebhookSink("ops", url, clock)
    message = str(info.value)
    assert "SECRETPATH" not in message and "hunter2" not in message


def test_the_webhook_backoff_doubles_up_to_its_cap_at_any_attempt(clock: VirtualClock) -> None:
    sink = WebhookSink("ops", "http://127.0.0.1/", clock, backoff_s=1.0, max_backoff_s=60.0)
    assert [sink.backoff(n) for n in (1, 2, 3, 7, 100, 5000)] == [1, 2, 4, 60, 60, 60]


async def test_a_command_receives_the_alert_on_stdin_and_in_its_environment(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    script = (
        "import json, os, sys; data = json.load(sys.stdin); "
        "data['env'] = os.environ['AGENTCRON_ALERT_KEY']; "
        f"open({str(out)!r}, 'w').write(json.dumps(data))"
    )
    await CommandSink("page", [sys.executable, "-c", script]).send(an_alert())
    data = json.loads(out.read_text())
    assert (data["rule"], data["env"]) == ("node_offline", "n1")


async def test_a_failing_command_reports_its_exit_code_and_stderr() -> None:
    code = "import sys; sys.stderr.write('no route'); sys.exit(3)"
    with pytest.raises(SinkError, match="exited with 3: no route"):
        await CommandSink("page", [sys.executable, "-c", code]).send(an_alert())


async def test_a_hanging_command_is_killed_at_its_timeout() -> None:
    code = "import time; time.sleep(30)"  # a hung child (noqa: sleep-ok)
    with pytest.raises(SinkError, match="killed"):
        await CommandSink("page", [sys.executable, "-c", code], timeout_s=0.3).send(an_alert())


async def test_a_program_removed_after_start_is_a_delivery_failure(tmp_path: Path) -> None:
    program = tmp_path / "notify"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    sink = CommandSink("page", [str(program)])
    program.unlink()
    with pytest.raises(SinkError, match="could not start"):
        await sink.send(an_alert())


def test_a_command_sink_whose_program_does_not_exist_is_refused_when_made() -> None:
    with pytest.raises(ValueError, match="'page': program '/nonexistent/notify' not found"):
        CommandSink("page", ["/nonexistent/notify"])
    with pytest.raises(
        ValueError, match="'page': program 'agentcron-no-such-notify' not found on PATH"
    ):
        CommandSink("page", ["agentcron-no-such-notify"])
    assert CommandSink("page", ["sh", "-c", "true"]).argv[0] == "sh"  # found on PATH


def test_agentcron_run_refuses_a_command_sink_without_its_program_with_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    (tmp_path / "agentcron.toml").write_text(
        '[[alerts.sinks]]\nname = "page"\ntype = "command"\ncommand = ["/nonexistent/notify"]\n'
    )
    # (Not the test run's own AGENTCRON_* switches: `run` warns about names it does not know.)
    ours = ("SCHEDULER_", "DASHBOARD_", "AGENTCRON_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    result = subprocess.run(
        [sys.executable, "-m", "agentcron", "run", "--no-dashboard", "--config", "agentcron.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "alerts.sinks[0] ('page')" in result.stderr
    assert "/nonexistent/notify" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_a_resolve_alert_says_so_in_the_json_and_the_environment(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    script = (
        "import json, os, sys; data = json.load(sys.stdin); "
        "data['env'] = os.environ['AGENTCRON_ALERT_RESOLVED']; "
        f"open({str(out)!r}, 'w').write(json.dumps(data))"
    )
    sink = CommandSink("page", [sys.executable, "-c", script])
    await sink.send(an_alert())
    assert (json.loads(out.read_text())["resolved"], json.loads(out.read_text())["env"]) == (
        False,
        "false",
    )
    await sink.send(dataclasses.replace(an_alert(), resolved=True))
    assert (json.loads(out.read_text())["resolved"], json.loads(out.read_text())["env"]) == (
        True,
        "true",
    )


def test_a_command_must_be_an_argv_list_never_a_shell_string() -> None:
    with pytest.raises(ValueError, match="argv"):
        CommandSink("page", "notify-send hi")
    with pytest.raises(ValueError, match="argv"):
        CommandSink("page", [])


async def test_the_log_sink_logs_critical_alerts_as_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await LogSink().send(an_alert())
    assert caplog.records[-1].levelname == "ERROR"
    assert "node n1 is offline" in caplog.records[-1].getMessage()
