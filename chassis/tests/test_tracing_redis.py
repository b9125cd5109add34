"""Redis commands made through the chassis client are spans of the trace they are made in."""

from __future__ import annotations

import uuid

from chassis_tracing_support import hex_trace_id, one, parent_id, recorded_spans
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from chassis.redis import redis_client
from chassis.settings import WithRedis
from fleetctl.stack import Stack


async def test_a_redis_command_is_a_client_span_with_its_arguments_masked(
    base_stack: Stack,
) -> None:
    exporter = recorded_spans()
    client = redis_client(WithRedis(service_name="test", redis_url=base_stack.redis_url))
    key = f"test:tracing:{uuid.uuid4().hex}"
    try:
        with trace.get_tracer("test").start_as_current_span("request") as request:
            await client.set(key, "secret-value", ex=5)
    finally:
        await client.aclose()
    command = one(exporter.get_finished_spans(), "SET", SpanKind.CLIENT)
    assert parent_id(command) == request.get_span_context().span_id
    assert hex_trace_id(command) == format(request.get_span_context().trace_id, "032x")
    attributes = dict(command.attributes or {})
    assert attributes["db.statement"] == "SET ? ? ? ?"
    assert "secret-value" not in str(attributes)
