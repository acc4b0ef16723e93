"""`python -m agentcron` is the `agentcron` command."""

from __future__ import annotations

from agentcron.cli.main import main

if __name__ == "__main__":
    main()
