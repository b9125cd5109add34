"""Where spans go is chosen by the standard OTEL_* variables, and nothing is exported by default."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.sdk.trace import TracerProvider

from chassis.telemetry import span_processors_from_env

_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)


class Collector:
    """An OTLP/HTTP endpoint on loopback that records the paths it was sent spans on."""

    def __init__(self) -> None:
        received: list[tuple[str, str]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                received.append((self.path, self.headers["content-type"]))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    collector = Collector()
    thread = threading.Thread(target=collector.server.serve_forever, daemon=True)
    thread.start()
    yield collector
    collector.server.shutdown()
    collector.server.server_close()


def _provider() -> TracerProvider:
    provider = TracerProvider()
    for processor in span_processors_from_env():
        provider.add_span_processor(processor)
    return provider


def test_nothing_is_exported_without_a_collector_endpoint() -> None:
    assert span_processors_from_env() == []


def test_spans_go_to_the_otlp_endpoint_once_one_is_set(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    provider = _provider()
    provider.get_tracer("test").start_span("exported").end()
    provider.force_flush()
    provider.shutdown()
    assert collector.received == [("/v1/traces", "application/x-protobuf")]


def test_none_turns_export_off_even_with_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert span_processors_from_env() == []


def test_console_writes_each_span_as_one_json_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    provider = _provider()
    provider.get_tracer("test").start_span("shown").end()
    provider.shutdown()
    out, err = capsys.readouterr()
    assert out == ""  # stdout is the JSON log stream
    [line] = err.splitlines()
    assert json.loads(line)["name"] == "shown"


def test_console_and_otlp_together(
    collector: Collector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{collector.url}/v1/traces")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp, console")
    provider = _provider()
    provider.get_tracer("test").start_span("both").end()
    provider.force_flush()
    provider.shutdown()
    assert collector.received == [("/v1/traces", "application/x-protobuf")]
    assert json.loads(capsys.readouterr().err)["name"] == "both"
