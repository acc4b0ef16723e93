"""Logging set-up for the daemon: human-readable on a terminal, JSON lines for machines.

Log calls across agentcron use lazy `%s` formatting and `extra={...}` fields; the JSON
formatter copies those extra fields into each line so log shippers can index them.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

__all__ = ["JsonFormatter", "configure_logging"]

LogFormat = Literal["text", "json", "auto"]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC ISO), level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(
    *,
    level: str = "info",
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
    log_file: Path | None = None,
    max_bytes: int = 10 * 1024 * 1024,
    backup_count: int = 5,
) -> None:
    """Configure the `agentcron` logger (and the root logger's level) for the daemon.

    `fmt="auto"` writes text when `stream` is a terminal, JSON lines otherwise. With
    `log_file`, a size-rotated copy is kept (`max_bytes` per file, `backup_count` files),
    always as JSON lines.
    """
    stream = stream if stream is not None else sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not _is_tty(stream))
    handler: logging.Handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter(_TEXT_FORMAT))
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8"
        )
        rotating.setFormatter(JsonFormatter())
        handlers.append(rotating)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_agentcron", False):
            root.removeHandler(old)
            old.close()
    for new in handlers:
        new._agentcron = True  # type: ignore[attr-defined]
        root.addHandler(new)
    root.setLevel(level.upper())
    # Third-party chatter stays at warning unless we debug.
    for noisy in ("uvicorn.access", "httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
