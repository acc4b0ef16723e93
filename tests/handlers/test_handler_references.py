"""`"module:attr"` references: parsing, resolving, and finding a function's own reference."""

from __future__ import annotations

import functools
import json

import handler_samples
import pytest

from agentcron.handlers import HandlerReferenceError, as_handler
from agentcron.handlers.references import parse_reference, reference_of, resolve


def test_a_reference_resolves_to_the_named_attribute() -> None:
    assert resolve("json:dumps") is json.dumps
    assert resolve("handler_samples:answer") is handler_samples.answer


def test_a_dotted_attribute_path_is_followed() -> None:
    assert resolve("json:JSONEncoder.encode") is json.JSONEncoder.encode


@pytest.mark.parametrize("ref", ["json", "json:", ":dumps", "json dumps", "json:dumps()", "a-b:c"])
def test_malformed_references_are_rejected_with_the_reference_named(ref: str) -> None:
    with pytest.raises(HandlerReferenceError, match="is not of the form"):
        parse_reference(ref)


def test_an_unknown_module_names_the_reference_and_the_import_error() -> None:
    with pytest.raises(HandlerReferenceError) as caught:
        as_handler("agentcron_no_such_module.jobs:run")
    message = str(caught.value)
    assert "'agentcron_no_such_module.jobs:run'" in message
    assert "ModuleNotFoundError" in message


def test_an_unknown_attribute_names_the_reference() -> None:
    with pytest.raises(HandlerReferenceError, match="'json:no_such_function'"):
        as_handler("json:no_such_function")


def test_a_reference_to_something_not_callable_is_rejected() -> None:
    with pytest.raises(HandlerReferenceError, match="not callable"):
        as_handler("handler_samples:NOT_CALLABLE")


def test_the_reference_error_is_a_value_error() -> None:
    assert issubclass(HandlerReferenceError, ValueError)


def test_reference_of_finds_module_level_functions_only() -> None:
    assert reference_of(handler_samples.answer) == "handler_samples:answer"
    assert reference_of(json.dumps) == "json:dumps"
    assert reference_of(lambda: None) is None
    assert reference_of(functools.partial(handler_samples.answer)) is None
    assert reference_of(json.JSONEncoder().encode) is None  # a bound method
