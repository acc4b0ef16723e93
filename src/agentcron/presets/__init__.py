"""Ready-made sets of jobs; `agentcron run --preset agent-loops` registers the spec's 15 loops."""

from __future__ import annotations

from agentcron.presets.agent_loops import AGENT_LOOPS, LoopSpec

__all__ = ["AGENT_LOOPS", "PRESETS", "LoopSpec"]

#: Preset names accepted by `agentcron run --preset`.
PRESETS = ("agent-loops",)
