"""The fast path of `plain_value` for trivial results gives what the JSON round trip gives."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from handler_helpers import make_context

from agentcron.handlers import CallableHandler, HandlerOutcome
from agentcron.handlers.output import MAX_VALUE_CHARS, plain_value


def _round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value, allow_nan=False))


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -7, 2**63 - 1, -(2**63), "", 'héllo\n"q"', 1.5, -0.0, 1e308],
)
def test_trivial_values_are_kept_as_the_json_round_trip_would(value: Any) -> None:
    out = plain_value(value)
    assert out == _round_trip(value)
    assert type(out) is type(_round_trip(value))


def test_values_outside_the_fast_path_still_go_through_json() -> None:
    assert plain_value(float("nan")) == "nan"
    assert plain_value(float("-inf")) == "-inf"
    assert plain_value(2**64) == 2**64  # a big int is still plain JSON
    huge = "\x00" * MAX_VALUE_CHARS  # escaped, far beyond the bound
    out = plain_value(huge)
    assert isinstance(out, str) and len(out) < 2_000


def test_a_str_subclass_is_copied_to_a_plain_str() -> None:
    class Name(str):
        pass

    out = plain_value(Name("x"))
    assert out == "x" and type(out) is str


def test_a_function_returning_none_gets_an_empty_outcome() -> None:
    async def nothing() -> None:
        return None

    outcome = asyncio.run(CallableHandler(nothing).run(make_context()))
    assert outcome == HandlerOutcome()
