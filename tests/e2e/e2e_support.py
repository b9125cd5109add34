"""Helpers of the end-to-end tests: a fleet on free ports, clients of the public API."""

from __future__ import annotations

import socket
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response

from fleetctl.smtp_sink import MailSink
from fleetctl.stack import SERVICES, Stack
from fleetctl.supervisor import Fleet
from fleetctl.testing import eventually, serve_in_thread

# Tighter than production so the resilience tests run in seconds.
E2E_SETTINGS = {
    "RATE_LIMIT_LOGIN": "10/minute",
    "CIRCUIT_OPEN_SECONDS": "2",
    "WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    "WEBHOOK_BACKOFF_CAP_SECONDS": "1",
    # Spans as JSON lines on each service's output, so a test can follow one trace across them.
    "OTEL_TRACES_EXPORTER": "console",
    # Admission control at the decision SLO itself: bursts of a busy CI machine must not turn
    # the tests' orders away (the gate's behaviour is proven by orders' tests and `make bench`).
    "ORDER_ADMISSION_TARGET_SECONDS": "2",
    # A browser app's origin, as staging and production configure theirs.
    "CORS_ALLOWED_ORIGINS": "https://app.fleet.test",
    # A body trickled in is cut after 2 s instead of 10 (tests/security).
    "BODY_TIMEOUT_SECONDS": "2",
    # Download links that expire within a test; parts of S3's smallest size, so an export of
    # 100,000 orders is a multipart upload of a few parts.
    "S3_PRESIGN_TTL_SECONDS": "10",
    "S3_PART_SIZE_BYTES": str(5 * 1024 * 1024),
    # A reconciliation compares orders changed up to the moment it runs: the tests wait on the
    # saga's end themselves before they inject drift.
    "RECONCILIATION_SETTLE_SECONDS": "0",
}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def e2e_stack(state_dir: Path) -> Stack:
    *service_ports, smtp_port, s3_port = free_ports(len(SERVICES) + 2)
    ports = dict(zip((s.name for s in SERVICES), service_ports, strict=True))
    suffix = uuid.uuid4().hex[:10]
    return Stack.from_env().with_(
        database=f"fleet_e2e_{suffix}",
        redis_key_prefix=f"e2e:{suffix}:",
        amqp_namespace=f"e2e.{suffix}.",
        state_dir=state_dir,
        ports=ports,
        smtp_port=smtp_port,
        s3_port=s3_port,
        fleet_env="test",
        extra_env=E2E_SETTINGS,
    )


@dataclass
class RunningFleet:
    stack: Stack
    fleet: Fleet
    mail: MailSink

    @property
    def gateway(self) -> str:
        return self.stack.url("gateway")

    async def restart(self, name: str) -> None:
        await self.fleet.start_service(name)
        await self.fleet.wait_ready(30, names=[name])


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def register_and_login(
    client: httpx.AsyncClient, *, email: str | None = None, password: str = "correct horse battery"
) -> dict[str, str]:
    email = email or unique_email()
    registered = await client.post("/v1/auth/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    token = await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": password}
    )
    assert token.status_code == 200, token.text
    return {"email": email, "password": password, **token.json()}


_admin_tokens: dict[str, tuple[float, str]] = {}


async def admin_token(client: httpx.AsyncClient) -> str:
    """The admin's access token, fetched once per fleet (logins are rate limited)."""
    cached = _admin_tokens.get(str(client.base_url))
    if cached and cached[0] > time.monotonic():
        return cached[1]
    response = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "admin@example.com",
            "password": "admin-password-change-me",
        },
    )
    assert response.status_code == 200, response.text
    token = str(response.json()["access_token"])
    lifetime = float(response.json()["expires_in"])
    _admin_tokens[str(client.base_url)] = (time.monotonic() + lifetime / 2, token)
    return token


async def create_product(
    client: httpx.AsyncClient, *, stock: int, price: int = 1250, name: str = "Test item"
) -> str:
    """A new product (as the admin, through the gateway); its id."""
    response = await client.post(
        "/v1/products",
        headers=bearer(await admin_token(client)),
        json={
            "sku": f"E2E-{uuid.uuid4().hex[:12]}".upper(),
            "name": name,
            "price_cents": price,
            "stock": stock,
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def confirmed_order(
    client: httpx.AsyncClient, token: str, product_id: str, *, quantity: int = 1
) -> str:
    """A new order of the caller's (through the gateway), once the saga confirmed it; its id."""
    placed = await client.post(
        "/v1/orders",
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"product_id": product_id, "quantity": quantity}]},
    )
    assert placed.status_code == 202, placed.text
    order_id = str(placed.json()["id"])

    async def confirmed() -> bool:
        order = await client.get(f"/v1/orders/{order_id}", headers=bearer(token))
        return bool(order.json()["status"] == "confirmed")

    await eventually(confirmed, timeout=20)
    return order_id


class Receiver:
    """A webhook endpoint, served on loopback while the block runs, that records every call and
    fails the first `failures` of them with 500."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[dict[str, str], bytes]] = []
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.calls.append((dict(request.headers), await request.body()))
            if len(self.calls) <= self.failures:
                return Response(status_code=500)
            return Response(status_code=204)

        self.app = app
        self._serving = ExitStack()
        self.url = ""

    def __enter__(self) -> Receiver:
        self.url = self._serving.enter_context(serve_in_thread(self.app)) + "/hook"
        return self

    def __exit__(self, *_: Any) -> None:
        self._serving.close()
