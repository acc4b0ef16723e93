"""`describe_error` / `head_within` keep to `ERROR_CHARS`, the marker included."""

from __future__ import annotations

import pytest

from agentcron.error_text import ERROR_CHARS, describe_error, head_within


@pytest.mark.parametrize("size", [ERROR_CHARS + 1, ERROR_CHARS + 50, 10_000, 1_000_000])
def test_a_long_error_is_cut_to_error_chars_marker_included(size: int) -> None:
    error = describe_error(RuntimeError("x" * size))
    assert len(error) == ERROR_CHARS
    assert error.startswith("RuntimeError: xxx")
    shown = len(error) - len(error[error.index("... [") :]) - len("RuntimeError: ")
    assert error.endswith(f"... [{size - shown:,} more characters]")


def test_text_within_the_bound_is_kept_as_is() -> None:
    assert head_within("x" * 4000, 4000) == "x" * 4000
    assert len(head_within("x" * 4001, 4000)) == 4000
