"""Logging set-up for the daemon: human-readable on a terminal, JSON lines for machines.

Log calls across agentcron use lazy `%s` formatting and `extra={...}` fields; the JSON
formatter copies those extra fields into each line so log shippers can index them.

Whatever a record carries (newlines, escape sequences, lone surrogates, huge strings,
objects whose `str()` raises), a JSON record is exactly one valid, UTF-8 encodable JSON
line, and a text record is one line (plus indented `  | ` lines for a traceback), so text
from a job name or an error message can never pass for a log line of its own. The log file
never takes the daemon down: while it cannot be written (directory gone, read-only, disk
full) its lines are dropped, said once on the console, and it is reopened when it can be.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import math
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from agentcron.error_text import head_of

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]

LogFormat = Literal["text", "json", "auto"]

#: Longest string (message, extra value, traceback) written as is; the rest is cut.
MAX_FIELD_CHARS = 16_384
#: How deep nested `extra` values (dicts, lists) are copied before they become strings.
_MAX_DEPTH = 8

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}
# Keys of a JSON line that an `extra` field may not overwrite (it gets an "extra." prefix).
_CORE_KEYS = frozenset({"time", "level", "logger", "message", "exception", "stack"})

# Left raw by json.dumps(ensure_ascii=False) but line breaks for many readers
# (str.splitlines, JavaScript), terminal controls (C1), or not encodable (lone surrogates).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Everything that could end a text line or drive a terminal.
_TEXT_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_TEXT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _text_escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _TEXT_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _escape_text(text: str) -> str:
    return _TEXT_UNSAFE.sub(_text_escape, text)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: str() raised {type(exc).__name__}>"


def _truncate(text: str) -> str:
    return head_of(text, MAX_FIELD_CHARS)


def _message(record: logging.LogRecord) -> str:
    """`record.getMessage()`, or what can be said when the message cannot be formatted."""
    try:
        return _truncate(record.getMessage())
    except Exception as exc:
        return _truncate(
            f"{_safe_str(record.msg)} [log message not formatted: {type(exc).__name__}]"
        )


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A copy of `value` that `json.dumps` writes as valid JSON, whatever `value` is."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _truncate(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if depth < _MAX_DEPTH:
        if isinstance(value, dict):
            return {_safe_str(k): _jsonable(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [_jsonable(v, depth + 1) for v in value]
    return _truncate(_safe_str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC ISO), level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": _safe_str(record.levelname).lower(),
            "logger": _safe_str(record.name),
            "message": _message(record),
        }
        for key, value in vars(record).items():
            name = _safe_str(key)
            if name in _STANDARD_ATTRS or name.startswith("_"):
                continue
            entry[f"extra.{name}" if name in _CORE_KEYS else name] = _jsonable(value)
        if record.exc_info:
            entry["exception"] = _truncate(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = _truncate(self.formatStack(record.stack_info))
        line = json.dumps(entry, ensure_ascii=False, allow_nan=False)
        return _JSON_UNSAFE.sub(_json_escape, line)


_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message` on one line; control characters are shown escaped.

    A traceback follows on lines that start with `  | `, so no text a record carries can
    start a line that looks like another record.
    """

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} {_escape_text(_safe_str(record.levelname)):<7} "
            f"{_escape_text(_safe_str(record.name))}: {_escape_text(_message(record))}"
        )
        tails = []
        if record.exc_info:
            tails.append(self.formatException(record.exc_info))
        if record.stack_info:
            tails.append(self.formatStack(record.stack_info))
        for tail in tails:
            for part in _truncate(tail).splitlines():
                line += f"\n  | {_escape_text(part)}"
        return line


class _LogFile(logging.handlers.RotatingFileHandler):
    """A rotating log file that never raises or floods the console when it cannot be written.

    The file (and its directory) is opened at the first record and reopened after a failure.
    A failure drops the record and is reported once through `report`; so is the recovery.
    """

    def __init__(
        self, path: Path, *, max_bytes: int, backup_count: int, report: Callable[[str], None]
    ) -> None:
        super().__init__(
            path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8", delay=True
        )
        self._report = report
        self.lost = 0
        self._failing = False

    def _open(self) -> Any:
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def emit(self, record: logging.LogRecord) -> None:
        lost = self.lost
        super().emit(record)
        if self._failing and self.lost == lost:
            self._failing = False
            self._report(
                f"log file {self.baseFilename} is writable again; {self.lost} lines were lost"
            )

    def handleError(self, record: logging.LogRecord) -> None:
        # Called inside `except` by the handlers' emit: drop the line, reopen next time.
        error = sys.exc_info()[1]
        self.lost += 1
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()
        if not self._failing:
            self._failing = True
            self._report(
                f"cannot write log file {self.baseFilename} ({_safe_str(error)}); "
                "its lines are dropped until it can be written again"
            )


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
    always as JSON lines. A log file that cannot be written never raises: the problem is
    logged once on `stream` and the file is retried with each record.
    """
    stream = stream if stream is not None else sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not _is_tty(stream))
    handler: logging.Handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handlers: list[logging.Handler] = [handler]
    if log_file is not None:

        def report(message: str) -> None:
            handler.handle(
                logging.makeLogRecord(
                    {
                        "name": "agentcron.logs",
                        "levelno": logging.WARNING,
                        "levelname": "WARNING",
                        "msg": message,
                    }
                )
            )

        rotating = _LogFile(log_file, max_bytes=max_bytes, backup_count=backup_count, report=report)
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
