"""Durable state: job definitions, runs, fire claims, leases, heartbeats, audit, system state.

`open_store(url)` picks a backend: `memory://` (default of the Python API),
`sqlite:///path/to/scheduler.db`, `redis://host:port/db` (extra `redis`). Backends are
imported only when used.
"""

from __future__ import annotations

from agentcron.store.base import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]
