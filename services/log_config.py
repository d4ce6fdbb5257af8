"""structlog, configured once per process: JSON lines for machines, readable lines on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from services.terminal_text import terminal_safe

_configured = False


class _StderrLogger:
    """Writes each line to whatever ``sys.stderr`` is at that moment.

    The Appwrite runtime swaps ``sys.stderr`` for every execution to capture its logs, and pytest does the
    same per test; a logger that kept the stream of the moment it was configured would write elsewhere.
    """

    def __init__(self, *_args: object) -> None:
        pass

    def msg(self, message: str) -> None:
        stream = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def configure_logging(
    fmt: Literal["auto", "json", "console"] = "auto", level: str = "INFO", *, force: bool = False
) -> None:
    """Idempotent unless ``force``: adapters call it at cold start, tests may call it again."""
    global _configured
    if _configured and not force:
        return
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    # JSON escapes every control character itself; the console lines escape them here (ids and labels in a line
    # may be stored text, and an escape sequence in one must not reach the terminal raw).
    rendering = (
        [structlog.processors.JSONRenderer()]
        if use_json
        else [_terminal_safe_values, structlog.dev.ConsoleRenderer(colors=False)]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *rendering,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=_StderrLogger,
        cache_logger_on_first_use=False,
    )
    _configured = True


def _terminal_safe_values(_logger: object, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Text values escaped for the terminal (other values are shown by repr, which escapes them already); a
    traceback keeps its line breaks."""
    for key, value in event.items():
        if isinstance(value, str) and not value.isprintable():
            lines = value.split("\n") if key == "exception" else [value]
            event[key] = "\n".join(terminal_safe(line) for line in lines)
    return event
