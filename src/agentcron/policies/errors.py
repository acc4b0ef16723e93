"""The one error type for a bad job definition, raised at `add_job` time."""

from __future__ import annotations

__all__ = ["JobConfigError"]


class JobConfigError(ValueError):
    """A job option is invalid. `field` names the option (`retry.max_delay`, `trigger`, ...).

    Raised when a job is defined (`add_job`, `update`, decorators, codec), never at fire time.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def require(condition: bool, field: str, message: str) -> None:
    """Raise `JobConfigError(field, message)` unless `condition` holds."""
    if not condition:
        raise JobConfigError(field, message)


def non_negative(value: float | None, field: str) -> None:
    if value is not None and not value >= 0:
        raise JobConfigError(field, f"must be >= 0, got {value!r}")


def positive(value: float | None, field: str) -> None:
    if value is not None and not value > 0:
        raise JobConfigError(field, f"must be > 0, got {value!r}")
