"""The one error type for a bad job definition, raised at `add_job` time."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = [
    "MAX_DURATION_S",
    "JobConfigError",
    "check_settings",
    "from_dict",
    "inapplicable_setting",
    "setting_problem",
    "shown",
    "within_max_duration",
]

P = TypeVar("P")

#: The longest duration a job option takes (timeout, jitter, retry delays, grace, reset
#: timeout, interval ...): 100 years, as the job file's durations and the queue's delays.
#: Longer ones are typos, and overflow `datetime` arithmetic at fire time.
MAX_DURATION_S = 100 * 365 * 86_400.0
#: The longest message a `JobConfigError` carries (the start of it).
MAX_MESSAGE_CHARS = 1000


class JobConfigError(ValueError):
    """A job option is invalid. `field` names the option (`retry.max_delay`, `trigger`, ...).

    Raised when a job is defined (`add_job`, `update`, decorators, codec), never at fire time.
    The message is one line (line breaks of quoted text are escaped) of at most about
    `MAX_MESSAGE_CHARS` characters, however long the value it quotes.
    """

    def __init__(self, field: str, message: str) -> None:
        text = f"{field}: {message}"
        if "\n" in text or "\r" in text:
            text = text.replace("\r", "\\r").replace("\n", "\\n")
        if len(text) > MAX_MESSAGE_CHARS:
            text = (
                f"{text[:MAX_MESSAGE_CHARS]}... [{len(text) - MAX_MESSAGE_CHARS:,} more characters]"
            )
        super().__init__(text)
        self.field = field


def shown(value: object, limit: int = 60) -> str:
    """`repr(value)` for an error message, cut to about `limit` characters."""
    try:
        text = repr(value)
    except Exception:  # a value's own __repr__ may raise
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def within_max_duration(value: float | None, field: str) -> None:
    """Raise `JobConfigError` when `value` (seconds) is over `MAX_DURATION_S` (100 years)."""
    if value is not None and value > MAX_DURATION_S:
        raise JobConfigError(
            field, f"{shown(value)} seconds is longer than 100 years ({MAX_DURATION_S:.0f} s)"
        )


def require(condition: bool, field: str, message: str) -> None:
    """Raise `JobConfigError(field, message)` unless `condition` holds."""
    if not condition:
        raise JobConfigError(field, message)


def non_negative(value: float | None, field: str) -> None:
    if value is not None and not value >= 0:
        raise JobConfigError(field, f"must be >= 0, got {shown(value)}")


def positive(value: float | None, field: str) -> None:
    if value is not None and not value > 0:
        raise JobConfigError(field, f"must be > 0, got {shown(value)}")


def setting_problem(type_text: str, value: Any) -> str | None:
    """What is wrong with `value` for a policy setting annotated `type_text` (`"int"`,
    `"float | None"`, `"str"`, ...), or None. The one check of `from_dict` and of the job
    file's `policy_problems`."""
    if value is None and type_text.endswith("| None"):
        return None
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if type_text.startswith("int") and not (number and isinstance(value, int)):
        return f"expected a whole number, got {shown(value)}"
    # (an int is finite however large: `math.isfinite(10**400)` would raise OverflowError)
    finite = number and (isinstance(value, int) or math.isfinite(value))
    if type_text.startswith("float") and not finite:
        return f"expected a finite number, got {shown(value)}"
    if type_text.startswith("str") and not isinstance(value, str):
        return f"expected text, got {shown(value)}"
    return None


def check_settings(obj: object, field: str, names: dict[str, str] | None = None) -> None:
    """Raise `JobConfigError` naming `field.<name>` for the first setting of the frozen
    dataclass `obj` whose value has the wrong type for its annotation (`setting_problem`):
    the check `from_dict` makes, for a policy built directly (`Retry(base_delay="1")`,
    `CircuitBreaker(failure_threshold=True)`). `names` maps a field to the name users give
    it (`delay_s` -> `delay`)."""
    for spec in dataclasses.fields(obj):  # type: ignore[arg-type]
        problem = setting_problem(str(spec.type), getattr(obj, spec.name))
        if problem is not None:
            name = (names or {}).get(spec.name, spec.name)
            raise JobConfigError(f"{field}.{name}", problem)


def inapplicable_setting(
    field: str, policy: str, needs: dict[str, str], given: Iterable[str]
) -> None:
    """Raise `JobConfigError` naming `field.<name>` for the first setting in `given` (names
    as users write them) that only applies to another policy than `policy`: `needs` maps
    such a setting to the policy it belongs to (`max_concurrent` -> `concurrent`). A setting
    the policy ignores would otherwise be dropped without a word (`{ max_concurrent = 3 }`
    ran as `skip`)."""
    for name in given:
        needed = needs.get(name)
        if needed is not None and needed != policy:
            raise JobConfigError(
                f"{field}.{name}",
                f"only applies to the policy {needed!r}, not {policy!r}; set policy to"
                f" {needed!r}, or remove {name}",
            )


def from_dict(
    cls: type[P], data: dict[str, Any], field: str, names: dict[str, str] | None = None
) -> P:
    """`cls(**data)` for the dict form of a policy (a frozen dataclass), with each mistake
    named `field.key`: an unknown key, or a value of the wrong type (`setting_problem`),
    which the checks in `__post_init__` would otherwise report as a Python comparison
    error ("'>=' not supported between instances of 'str' and 'int'"). `names` maps a
    field to the documented name users give it (`grace_s` -> `grace`): the unknown-key
    error lists the documented names."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in data.items():
        spec = fields.get(key)
        if spec is None:
            known = ", ".join((names or {}).get(name, name) for name in fields)
            raise JobConfigError(f"{field}.{key}", f"unknown key; use one of {known}")
        problem = setting_problem(str(spec.type), value)
        if problem is not None:
            raise JobConfigError(f"{field}.{key}", problem)
    try:
        return cls(**data)
    except TypeError as exc:
        raise JobConfigError(field, str(exc)) from exc
