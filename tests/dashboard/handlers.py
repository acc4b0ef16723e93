"""Importable job handlers for the dashboard tests (jobs added over HTTP need a reference)."""

from __future__ import annotations

from typing import Any


async def ok(ctx: Any) -> str:
    return "ok"


async def fail(ctx: Any) -> None:
    raise RuntimeError("disk full")
