"""OpenTelemetry tracing: W3C trace context in and out, exporters chosen by standard OTEL_* vars.

`OTEL_TRACES_EXPORTER` lists the exporters (`otlp` by default, `console`, `none`); OTLP stays off
until `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` names a collector, so
a laptop without one pays nothing. `console` writes one JSON span per line to stderr (stdout is
the JSON log stream). `OTEL_SDK_DISABLED=true` turns span recording off; W3C context still flows.
"""

from __future__ import annotations

import os
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


def _otlp_configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def span_processors_from_env() -> list[SpanProcessor]:
    """The processors `OTEL_TRACES_EXPORTER` asks for (the OTLP exporter reads its other vars)."""
    names = {
        name.strip().lower()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    }
    processors: list[SpanProcessor] = []
    if "none" in names:
        return processors
    if "otlp" in names and _otlp_configured():
        # Imported only when exporting: the exporter brings protobuf along.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        exporter: SpanExporter = OTLPSpanExporter()
        processors.append(BatchSpanProcessor(exporter))
    if "console" in names:
        # Synchronous, so a local run shows each span the moment it ends.
        processors.append(
            SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr, formatter=_one_line))
        )
    return processors


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def configure_tracing(*, service: str, version: str) -> TracerProvider:
    """Install a tracer provider once per process so trace ids exist even without an exporter.

    Later calls return the installed provider (tests add their own span processor to it)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": version})
    )
    if not sdk_disabled():
        for processor in span_processors_from_env():
            provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return provider


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
