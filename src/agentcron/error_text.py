"""What an exception raised by user code says, safely: its text runs user code too."""

from __future__ import annotations

__all__ = [
    "ERROR_CHARS",
    "describe_error",
    "head_of",
    "head_within",
    "message_of",
    "shown_url",
    "storable",
]

#: The longest error text kept (the start of it): a run record's or a queue job's. Events,
#: alerts and the log repeat it, and a handler's error may carry megabytes (a whole argv).
ERROR_CHARS = 4000


def message_of(error: BaseException) -> str:
    """`str(error)`, which runs the handler's code (`__str__`) and so may itself raise."""
    try:
        return str(error)
    except Exception as exc:
        return f"<str() of the error raised {type(exc).__name__}>"


def describe_error(error: BaseException) -> str:
    """`"<type>: <message>"` (or the type alone), cut to `ERROR_CHARS` characters."""
    text = message_of(error)
    described = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return storable(head_within(described, ERROR_CHARS))


def head_of(text: str, limit_chars: int) -> str:
    """The first `limit_chars` characters of `text`, saying how many more there were."""
    if len(text) <= limit_chars:
        return text
    return f"{text[:limit_chars]}... [{len(text) - limit_chars:,} more characters]"


def head_within(text: str, limit_chars: int) -> str:
    """As `head_of`, but at most `limit_chars` characters in all, the marker included (a
    run's `error`: documented as at most `ERROR_CHARS`)."""
    if len(text) <= limit_chars:
        return text
    keep = limit_chars
    while True:  # (the marker's length depends on the count it shows: at most two turns)
        marker = f"... [{len(text) - keep:,} more characters]"
        fits = max(0, limit_chars - len(marker))
        if fits == keep:
            break
        keep = fits
    return (text[:keep] + marker)[:limit_chars]


def storable(text: str) -> str:
    """`text` as every store can write it: a lone surrogate (Python's stand-in for a byte of
    a file name or an argv that is not UTF-8, which an error message may quote) becomes
    `\\udcff`. SQLite and Redis refuse such text, and a run whose record cannot be written
    ends up interrupted and retried instead of failed."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def shown_url(url: str) -> str:
    """`url` as messages and logs show it: scheme and host only, quoted. Its path and query
    are often the secret itself (a Slack or Teams incoming webhook, a healthchecks.io ping
    UUID), its user info a password."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return repr(scheme[:20] + ("..." if len(scheme) > 20 else ""))
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    return repr(f"{scheme[:20]}://{host[:80]}/...")
