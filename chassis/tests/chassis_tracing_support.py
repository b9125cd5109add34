"""Spans the chassis recorded, in memory, and chassis apps served over real loopback sockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from chassis.telemetry import configure_tracing
from fleetctl.testing import serve_in_thread

_exporter: InMemorySpanExporter | None = None


def recorded_spans() -> InMemorySpanExporter:
    """The process's span recorder, emptied: added once to the installed tracer provider (the
    provider is process-wide and set once, so a test adds a processor rather than replacing it)."""
    global _exporter  # noqa: PLW0603 - one recorder per process, like the provider it hangs on
    if _exporter is None:
        provider = configure_tracing(service="chassis-tests", version="test")
        _exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
    _exporter.clear()
    return _exporter


def hex_trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def one(spans: Sequence[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.name == name and s.kind is kind]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


async def spans_when(
    exporter: InMemorySpanExporter,
    ready: Callable[[Sequence[ReadableSpan]], bool],
    timeout: float = 10.0,
) -> tuple[ReadableSpan, ...]:
    """The finished spans once `ready` holds (a server ends its span after the response left)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = exporter.get_finished_spans()
        if ready(spans):
            return spans
        if time.monotonic() > deadline:
            names = [(s.name, s.kind) for s in spans]
            raise AssertionError(f"spans not recorded within {timeout}s: {names}")
        await asyncio.sleep(0.02)


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a loopback port, in a thread with its own event loop (like a
    separate process, but sharing the span recorder); yields its base URL."""
    with serve_in_thread(app, lifespan="on") as url:
        yield url
