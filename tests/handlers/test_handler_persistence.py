"""`as_handler`, `to_dict` and `handler_from_dict`: what goes into the store comes back."""

from __future__ import annotations

import json
from typing import Any

import handler_samples
import pytest

from agentcron.handlers import (
    CallableHandler,
    Command,
    Handler,
    HandlerReferenceError,
    Http,
    as_handler,
    handler_from_dict,
)


@pytest.mark.parametrize(
    "handler",
    [
        CallableHandler("handler_samples:answer"),
        CallableHandler(handler_samples.context_summary, isolation="process", kill_grace_s=1.5),
        Command(["rsync", "-a", "src/", "dst/"], cwd="/srv", env={"A": "1"}, ok_codes=(0, 24)),
        Command("backup --all", kill_grace_s=0.5, output_tail_bytes=100),
        Command("echo hi | wc -c", shell=True),
        Http("https://example.test/hook", json={"a": [1, 2]}, headers={"X-Key": "v"}),
        Http("http://127.0.0.1:9/x", method="put", body=b"\x00\xff", ok_statuses=[200, 204, 304]),
        Http("http://127.0.0.1:9/x", body="text", timeout_s=2),
    ],
    ids=lambda handler: handler.describe(),
)
def test_to_dict_is_json_and_from_dict_rebuilds_an_equivalent_handler(handler: Handler) -> None:
    data = json.loads(json.dumps(handler.to_dict()))
    rebuilt = handler_from_dict(data)
    assert type(rebuilt) is type(handler)
    assert rebuilt.to_dict() == handler.to_dict()
    assert rebuilt.describe() == handler.describe()


def test_minimal_definitions_take_the_defaults() -> None:
    assert handler_from_dict({"kind": "command", "argv": ["ls"]}).to_dict()["kill_grace_s"] == 5.0
    assert handler_from_dict({"kind": "callable", "ref": "json:dumps"}).to_dict()["isolation"] == (
        "thread"
    )
    http = handler_from_dict({"kind": "http", "url": "http://127.0.0.1/"}).to_dict()
    assert http["method"] == "POST" and http["ok_statuses"] == [[200, 299]]


def test_handlers_are_returned_as_they_are() -> None:
    command = Command(["true"])
    assert as_handler(command) is command
    assert isinstance(command, Handler)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "carrier-pigeon"}, "unknown handler kind 'carrier-pigeon'"),
        ({"argv": ["ls"]}, "unknown handler kind None"),
        ({"kind": "command", "argv": ["ls"], "user": "root"}, "unknown field.*user"),
        ({"kind": "command"}, "missing field.*argv"),
        ({"kind": "callable", "ref": "nowhere_module:x"}, "nowhere_module:x"),
        ({"kind": "callable", "ref": 3}, "ref must be a string"),
        ({"kind": "http", "url": "ftp://example.test/"}, "http:// or https://"),
        ({"kind": "http", "url": "http://h/", "ok_statuses": "2xx"}, "ok_statuses"),
        ({"kind": "command", "argv": ["ls"], "kill_grace_s": "soon"}, "kill_grace_s"),
    ],
)
def test_bad_definitions_raise_a_reference_error_naming_the_problem(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(HandlerReferenceError, match=message):
        handler_from_dict(data)


@pytest.mark.parametrize("obj", [5, None, b"bytes", ["ls"]])
def test_as_handler_rejects_what_is_not_a_handler(obj: object) -> None:
    with pytest.raises(HandlerReferenceError, match="a handler must be"):
        as_handler(obj)


def test_as_handler_does_not_treat_a_handler_class_as_a_handler() -> None:
    handler = as_handler(Command)  # a class is a callable, not an instance
    assert isinstance(handler, CallableHandler)
