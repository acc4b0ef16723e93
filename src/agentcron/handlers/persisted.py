"""Checks shared by every handler's `from_dict`: the kind is right, the fields are known."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from agentcron.handlers.references import HandlerReferenceError

__all__ = ["checked_fields"]


def checked_fields(
    data: Mapping[str, Any], *, kind: str, required: Collection[str], optional: Collection[str]
) -> dict[str, Any]:
    """The fields of `data` other than `kind`, after checking none is missing or unknown.

    Raises HandlerReferenceError naming the unknown or missing fields.
    """
    if not isinstance(data, Mapping):
        raise HandlerReferenceError(f"a {kind} handler definition must be a mapping")
    fields = {key: value for key, value in data.items() if key != "kind"}
    unknown = sorted(set(fields) - set(required) - set(optional), key=str)
    if unknown:
        raise HandlerReferenceError(
            f"unknown field(s) in {kind} handler definition: {', '.join(map(str, unknown))}"
        )
    missing = sorted(set(required) - set(fields))
    if missing:
        raise HandlerReferenceError(
            f"missing field(s) in {kind} handler definition: {', '.join(missing)}"
        )
    return fields
