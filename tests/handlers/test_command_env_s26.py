"""`Command` refuses when it is defined what every run would fail on, or what has no sane
size: environment variable names the OS refuses (empty, with `=` or NUL), an output tail
over `MAX_OUTPUT_TAIL_BYTES`, a kill grace over the 100-year cap of every duration."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from handler_helpers import make_context

from agentcron.handlers import Command, handler_from_dict
from agentcron.handlers.checks import MAX_OUTPUT_TAIL_BYTES
from agentcron.policies.errors import MAX_DURATION_S

PY = sys.executable


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"A=B": "x"}, "command env: 'A=B' is not a variable name (empty, or has = or NUL)"),
        ({"=A": "x"}, "command env: '=A' is not a variable name"),
        ({"": "x"}, "command env: '' is not a variable name"),
        ({"A\0B": "x"}, "command env: 'A\\x00B' is not a variable name"),
        ({"A": "x\0y"}, "command env: 'A' has a NUL character in its value"),
    ],
)
def test_an_env_the_os_would_refuse_is_refused_when_defined(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        Command([PY, "-c", "pass"], env=env)
    assert str(caught.value).startswith(message)
    with pytest.raises(ValueError) as caught:
        handler_from_dict({"kind": "command", "argv": [PY, "-c", "pass"], "env": env})
    assert message in str(caught.value)


def test_a_long_bad_env_name_is_cut_in_the_message() -> None:
    with pytest.raises(ValueError) as caught:
        Command(["true"], env={"=" * 100_000: "x"})
    assert len(str(caught.value)) < 200


async def test_an_env_value_with_equals_signs_reaches_the_child() -> None:
    program = "import os; print(os.environ['AGENTCRON_S26'])"
    command = Command([PY, "-c", program], env={"AGENTCRON_S26": "a=b=c"})
    outcome = await command.run(make_context())
    assert outcome.output_tail is not None
    assert outcome.output_tail.strip() == "a=b=c"


def test_output_tail_bytes_is_at_most_one_mebibyte() -> None:
    assert MAX_OUTPUT_TAIL_BYTES == 1024 * 1024
    assert Command(["true"], output_tail_bytes=MAX_OUTPUT_TAIL_BYTES).output_tail_bytes == (
        MAX_OUTPUT_TAIL_BYTES
    )
    for too_many in (MAX_OUTPUT_TAIL_BYTES + 1, 10**12):
        with pytest.raises(ValueError) as caught:
            handler_from_dict({"kind": "command", "argv": ["true"], "output_tail_bytes": too_many})
        assert str(caught.value).endswith(
            f"command output_tail_bytes: at most {MAX_OUTPUT_TAIL_BYTES} (1 MiB), got {too_many}"
        )


def test_kill_grace_is_at_most_one_hundred_years() -> None:
    assert Command(["true"], kill_grace_s=MAX_DURATION_S).kill_grace_s == MAX_DURATION_S
    with pytest.raises(ValueError) as caught:
        handler_from_dict({"kind": "command", "argv": ["true"], "kill_grace_s": 1e300})
    assert "command kill_grace_s: 1e+300 seconds is longer than 100 years" in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"env": {"A": [0] * 100_000}}, {"ok_codes": ["x"] * 100_000}, {"cwd": [0] * 100_000}],
)
def test_a_huge_wrong_value_is_cut_in_the_message(kwargs: dict[str, object]) -> None:
    # `jobs import` prints the message as its one line of error.
    with pytest.raises(ValueError) as caught:
        handler_from_dict({"kind": "command", "argv": ["true"], **kwargs})
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("make", ["callable", "http"])
def test_the_other_handlers_bound_their_tail_and_kill_grace_as_command_does(make: str) -> None:
    # Callable and Http handlers took `output_tail_bytes=10**12` and `kill_grace_s=1e300`.
    from agentcron.handlers import CallableHandler, Http

    def build(**options: Any) -> object:
        if make == "callable":
            return CallableHandler("os:getcwd", **options)
        return Http("http://127.0.0.1:9/", **options)

    with pytest.raises(ValueError, match="at most 1048576"):
        build(output_tail_bytes=10**12)
    if make == "callable":
        with pytest.raises(ValueError, match="100 years"):
            build(kill_grace_s=1e300)
