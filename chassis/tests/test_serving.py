"""A real service process: JSON logs with correlation fields, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chassis_sample import free_port

SAMPLE = Path(__file__).with_name("chassis_sample.py")


class Running:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PORT": str(port), "SHUTDOWN_GRACE_SECONDS": "5", "LOG_LEVEL": "INFO"}
        self.process = subprocess.Popen(
            [sys.executable, str(SAMPLE)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/livez", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        msg = "sample service did not start:\n" + "\n".join(self.lines)
        raise AssertionError(msg)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def wait_for_record(self, **fields: object) -> dict[str, object]:
        """The first log record holding every field given, waiting up to 10 s for it."""
        deadline = time.monotonic() + 10
        while True:
            found = [r for r in self.records() if fields.items() <= r.items()]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no log record with {fields}:\n{self.lines}"
            time.sleep(0.02)


@pytest.fixture
def running() -> Iterator[Running]:
    service = Running(free_port())
    yield service
    if service.process.poll() is None:
        service.process.kill()
        service.process.wait()


def test_every_log_line_is_json_with_service_request_and_trace_ids(running: Running) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    httpx.get(
        f"{running.url}/widgets/3",
        headers={"x-request-id": "log-check-1", "traceparent": traceparent},
    )
    access = running.wait_for_record(event="request", request_id="log-check-1")
    records = running.records()
    assert all(
        {"service", "version", "request_id", "trace_id", "level"} <= r.keys() for r in records
    )
    assert access["service"] == "sample"
    assert not any("color_message" in r for r in records)
    assert access["route"] == "/widgets/{widget_id}"
    # The caller's W3C trace continues in this service.
    assert access["trace_id"] == "0af7651916cd43dd8448eb211c80319c"


def test_sigterm_finishes_in_flight_requests_then_exits_cleanly(running: Running) -> None:
    result: dict[str, object] = {}

    def slow_call() -> None:
        response = httpx.get(f"{running.url}/slow", params={"seconds": 1.5}, timeout=10)
        result["status"] = response.status_code
        result["body"] = response.json()

    caller = threading.Thread(target=slow_call)
    caller.start()
    running.wait_for_record(event="slow_request_started")  # the request is in flight
    running.process.send_signal(signal.SIGTERM)
    caller.join(10)
    assert result == {"status": 200, "body": {"slept": 1.5}}
    assert running.process.wait(10) == 0
    # New connections are refused once it has stopped.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.url}/livez", timeout=1)
    events = [r.get("event") for r in running.records()]
    assert "shutdown_signal" in events
    assert events.index("service_stopped") > events.index("shutdown_signal")


def test_a_service_whose_log_reader_is_gone_still_serves_and_stops_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SHUTDOWN_GRACE_SECONDS": "5", "LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [sys.executable, str(SAMPLE)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not _answers(f"{url}/livez"):
            assert time.monotonic() < deadline, "sample service did not start"
            time.sleep(0.1)
        assert process.stdout is not None
        process.stdout.close()  # the supervisor reading its logs died: every write is EPIPE
        for _ in range(3):
            response = httpx.post(f"{url}/widgets", json={"name": "w", "size": 1}, timeout=5)
            assert response.status_code == 201
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def test_oversize_uploads_over_a_real_socket_get_413_problems(running: Running) -> None:
    body = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    with httpx.Client(base_url=running.url, timeout=10) as client:
        for _ in range(20):
            response = client.post(
                "/widgets", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == 413
            assert response.headers["content-type"] == "application/problem+json"


def test_connection_survives_a_413_while_the_client_is_still_uploading(running: Running) -> None:
    declared = 2 * 1024 * 1024
    head = (
        "POST /widgets HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as sock:
        sock.sendall(head + b" " * 65536)
        first = _read_response(sock)
        assert first.startswith(b"HTTP/1.1 413"), first[:200]
        # The client only now sends the rest of its body, as a real uploader would ...
        sock.sendall(b" " * (declared - 65536))
        # ... and the connection still serves the next request instead of being reset.
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: test\r\n\r\n")
        second = _read_response(sock)
        assert second.startswith(b"HTTP/1.1 200"), second[:200]


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body
