"""Bounded output tails and plain values."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agentcron.handlers.output import MAX_VALUE_CHARS, OutputTail, bound_text, plain_value


@given(st.lists(st.binary(max_size=50), max_size=40), st.integers(min_value=1, max_value=64))
def test_the_tail_is_the_end_of_everything_written(chunks: list[bytes], limit: int) -> None:
    tail = OutputTail(limit)
    for chunk in chunks:
        tail.write(chunk)
    everything = b"".join(chunks)
    assert tail.raw() == everything[-limit:]
    assert tail.dropped_bytes == max(0, len(everything) - limit)


def test_the_text_marks_how_much_was_dropped_and_survives_cut_characters() -> None:
    tail = OutputTail(5)
    tail.write("héllo wörld".encode())
    assert tail.text().startswith("[... 8 earlier bytes omitted ...]\n")
    assert tail.text().endswith("rld")


def test_plain_json_values_are_copied() -> None:
    value = {"a": [1, 2.5, None, True], "b": ("x", "y")}
    assert plain_value(value) == {"a": [1, 2.5, None, True], "b": ["x", "y"]}


def test_values_that_are_not_plain_json_become_a_truncated_repr() -> None:
    assert plain_value({1, 2}) == "{1, 2}"
    assert plain_value(float("inf")) == "inf"
    huge = "x" * (MAX_VALUE_CHARS + 10)
    assert isinstance(plain_value(huge), str) and len(plain_value(huge)) < 2_000


def test_a_broken_repr_does_not_raise() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert plain_value(Broken()) == "<Broken object (repr failed)>"


def test_bound_text_keeps_the_end() -> None:
    assert bound_text("abcdef", 3).endswith("\ndef")
    assert bound_text("abc", 3) == "abc"
