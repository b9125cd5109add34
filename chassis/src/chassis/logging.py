"""Structured JSON logs: one object per line with service, version, request_id and trace_id."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import FilteringBoundLogger

_configured_for: tuple[str, str, str] | None = None


def _add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Fill trace_id/span_id from the active OpenTelemetry span, if any."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    event.setdefault("trace_id", None)
    event.setdefault("request_id", None)
    return event


def _drop_color_message(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """uvicorn passes an ANSI-coloured copy of its message as `extra`; JSON logs don't want it."""
    event.pop("color_message", None)
    return event


class _Lines:
    """structlog's last step: one rendered line, one write, to whatever stdout is now.

    Resolved at each write (not when the logger was cached), so a test capturing stdout sees
    the lines; one `write` call per line keeps lines whole when several threads log. A write
    that fails is dropped, never raised.
    """

    def msg(self, message: bytes) -> None:
        stream = sys.stdout
        try:
            stream.write((message + b"\n").decode())
            stream.flush()
        except (OSError, ValueError):
            # A reader gone (a broken pipe) or stdout closed: the line is lost, as the standard
            # library's handlers lose it; logging must never fail the code that logs, least of
            # all the SIGTERM handler that starts a graceful shutdown.
            pass

    debug = info = warning = warn = error = critical = exception = fatal = msg


def _lines(*_: Any) -> _Lines:
    return _Lines()


def configure_logging(*, service: str, version: str, level: str = "INFO") -> None:
    """JSON lines on stdout. The service's own log calls take structlog's direct path
    (filtered by level before any work, rendered by orjson, no `logging.LogRecord`): an access
    line per request is part of every request's cost. The standard library's loggers (uvicorn,
    sqlalchemy, aio-pika, ...) are routed into the same format through a handler."""
    global _configured_for  # noqa: PLW0603 - logging is process-wide by nature
    if _configured_for == (service, version, level):
        return
    _configured_for = (service, version, level)

    def add_service(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event["service"] = service
        event["version"] = version
        return event

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        _add_trace_context,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps, default=str),
        ],
        logger_factory=_lines,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), _drop_color_message, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log is replaced by the chassis access log (with request_id).
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Per-request lines of client libraries would drown the access log.
    for name in ("httpx", "httpcore", "aiormq", "aio_pika"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    logger: FilteringBoundLogger = structlog.get_logger(name)
    return logger
