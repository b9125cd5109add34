"""Correlation across events: which event caused this one, and which request started it all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog
from opentelemetry import propagate

_causation: ContextVar[str | None] = ContextVar("causation_id", default=None)


def current_correlation_id() -> str | None:
    """The correlation id being handled: an event's, or else the HTTP request id."""
    bound = structlog.contextvars.get_contextvars()
    value = bound.get("correlation_id") or bound.get("request_id")
    return str(value) if value else None


def current_causation_id() -> str | None:
    return _causation.get()


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def handling_event(event_id: str, correlation_id: str | None) -> Iterator[None]:
    """While a consumed event is handled: logs carry its correlation id, and events written to
    the outbox name it as their cause."""
    token = _causation.set(event_id)
    with structlog.contextvars.bound_contextvars(
        correlation_id=correlation_id or event_id, event_id=event_id
    ):
        try:
            yield
        finally:
            _causation.reset(token)
