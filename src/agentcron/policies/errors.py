"""The one error type for a bad job definition, raised at `add_job` time."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

__all__ = ["JobConfigError", "from_dict", "setting_problem"]

P = TypeVar("P")


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


def setting_problem(type_text: str, value: Any) -> str | None:
    """What is wrong with `value` for a policy setting annotated `type_text` (`"int"`,
    `"float | None"`, `"str"`, ...), or None. The one check of `from_dict` and of the job
    file's `policy_problems`."""
    if value is None and type_text.endswith("| None"):
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if type_text.startswith("int") and not (number and isinstance(value, int)):
        return f"expected a whole number, got {value!r}"
    if type_text.startswith("float") and not (number and math.isfinite(value)):
        return f"expected a finite number, got {value!r}"
    if type_text.startswith("str") and not isinstance(value, str):
        return f"expected text, got {value!r}"
    return None


def from_dict(cls: type[P], data: dict[str, Any], field: str) -> P:
    """`cls(**data)` for the dict form of a policy (a frozen dataclass), with each mistake
    named `field.key`: an unknown key, or a value of the wrong type (`setting_problem`),
    which the checks in `__post_init__` would otherwise report as a Python comparison
    error ("'>=' not supported between instances of 'str' and 'int'")."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in data.items():
        spec = fields.get(key)
        if spec is None:
            raise JobConfigError(f"{field}.{key}", f"unknown key; use one of {', '.join(fields)}")
        problem = setting_problem(str(spec.type), value)
        if problem is not None:
            raise JobConfigError(f"{field}.{key}", problem)
    try:
        return cls(**data)
    except TypeError as exc:
        raise JobConfigError(field, str(exc)) from exc
