"""The public surface of `agentcron.handlers` is exactly its `__all__`."""

from __future__ import annotations

import agentcron.handlers as handlers


def test_all_lists_every_public_name_and_only_those() -> None:
    public = {
        name
        for name, value in vars(handlers).items()
        if not name.startswith("_")
        and name != "annotations"  # from __future__
        and not getattr(value, "__name__", "").startswith("agentcron.")  # submodules
    }
    assert set(handlers.__all__) == public


def test_the_engine_contract_names_are_exported() -> None:
    for name in ("as_handler", "handler_from_dict", "Command", "Http", "HandlerReferenceError"):
        assert name in handlers.__all__
