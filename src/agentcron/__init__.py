"""agentcron: the scheduling layer that keeps a personal AI agent working 24/7.

`import agentcron` stays light: the web dashboard, Redis and platform modules are imported
only by the modules that use them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
