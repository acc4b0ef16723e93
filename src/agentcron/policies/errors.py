"""The one error type for a bad job definition, raised at `add_job` time."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["JobConfigError", "from_dict"]

P = TypeVar("P")
_NUMBERS = frozenset({"int", "float"})


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


def from_dict(cls: type[P], data: dict[str, Any], field: str) -> P:
    """`cls(**data)` for the dict form of a policy (a frozen dataclass), with each mistake
    named `field.key`: an unknown key, or a value that is not a number for a numeric
    setting, which the checks in `__post_init__` would otherwise report as a Python
    comparison error ("'>=' not supported between instances of 'str' and 'int'")."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in data.items():
        spec = fields.get(key)
        if spec is None:
            raise JobConfigError(f"{field}.{key}", f"unknown key; use one of {', '.join(fields)}")
        kinds = {kind.strip() for kind in str(spec.type).split("|")}
        if kinds - {"None"} <= _NUMBERS and not (value is None and "None" in kinds):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise JobConfigError(f"{field}.{key}", f"expected a number, got {value!r}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise JobConfigError(field, str(exc)) from exc
