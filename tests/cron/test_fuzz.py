"""Random and hostile input: parsing either succeeds or raises CronError, nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentcron.cron import CronError, CronExpression

CRON_CHARS = "0123456789*/,-?#LWlw \tJANFEBMONSUNjan@"
HOSTILE = [
    "\x00",
    "\u00a0",
    "\u2028",
    "\u0663",  # arabic-indic three
    "\uff15",  # fullwidth five
    "\u0e51",
    "\U0001f600",
    "\ufffd",
    "%s",
    "{}",
    "$(reboot)",
    "'; DROP TABLE jobs; --",
    "\r\n",
    "9" * 50,
    "-" * 20,
    "@" * 20,
    "#" * 20,
]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _check(text: str) -> None:
    try:
        expr = CronExpression(text)
    except CronError as exc:
        message = str(exc)
        assert message
        assert "\n" not in message
        assert len(message) < 400
        return
    # a valid expression answers queries without raising
    nxt = expr.next(NOW)
    assert nxt is None or nxt > NOW
    expr.prev(NOW)
    expr.describe()


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet=CRON_CHARS, max_size=40))
def test_strings_of_cron_characters_parse_or_raise_cron_error(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=60))
def test_arbitrary_unicode_parses_or_raises_cron_error(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(st.text(alphabet=CRON_CHARS, max_size=8), st.sampled_from(HOSTILE)),
        min_size=1,
        max_size=9,
    )
)
def test_field_lists_with_hostile_tokens_parse_or_raise_cron_error(parts: list[str]) -> None:
    _check(" ".join(parts))


@pytest.mark.parametrize(
    "text",
    [
        "x" * 10_000,
        "* " * 5_000,
        "1," * 5_000,
        "9" * 10_000,
        "@" * 10_000,
        "*/" + "9" * 5000 + " * * * *",
        "0 0 * * 1#" + "9" * 5000,
        "L-" + "9" * 4000 + " * * * *",
        "\u0663" * 3000,
    ],
)
def test_ten_kilobyte_strings_raise_cron_error(text: str) -> None:
    with pytest.raises(CronError):
        CronExpression(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=40))
def test_unknown_time_zones_raise_cron_error(tz: str) -> None:
    try:
        CronExpression("0 0 * * *", tz=tz)
    except CronError:
        pass
