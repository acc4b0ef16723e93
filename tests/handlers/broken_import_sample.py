"""A module that fails to import with an exception whose message cannot be shown."""

from __future__ import annotations


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


raise Unprintable


def run() -> None:  # never reached
    pass
