"""Structured logs: JSON lines carrying the request id (bound per request as a contextvar)."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Called by the edges (CLI, app factory), never at import time."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping().get(level.upper(), 20)),
        logger_factory=_current_stderr,
        cache_logger_on_first_use=False,
    )


def _current_stderr(*_args: object) -> structlog.PrintLogger:
    """A logger on whatever ``sys.stderr`` is now: a stream swapped in at configure time (a test's
    capture, a CLI runner's buffer) may be closed long before the next line is logged."""
    return structlog.PrintLogger(sys.stderr)
