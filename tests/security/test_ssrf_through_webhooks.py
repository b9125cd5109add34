"""Server-side request forgery through webhook URLs, attempted through the gateway.

A subscriber names the URL the worker will call: an attacker would name the cloud's metadata
service, a private address, or a name or redirect that leads there. A fleet configured as in
production (private destinations refused; the end-to-end fleet allows them so its tests can run a
receiver on this machine) refuses every such URL when it is subscribed, and the worker never
follows a redirect when it delivers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from e2e_support import RunningFleet, bearer, e2e_stack, register_and_login
from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response

from fleetctl.bootstrap import bootstrap, drop_database
from fleetctl.s3_emulator import EmulatorProcess
from fleetctl.smtp_sink import MailSink
from fleetctl.supervisor import Fleet
from fleetctl.testing import serve_in_thread

pytestmark = pytest.mark.e2e

PRIVATE_DESTINATIONS = [
    "http://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
    "http://127.0.0.1:8080/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://0.0.0.0/hook",
    "http://[::1]/hook",
    "http://[::ffff:169.254.169.254]/hook",  # IPv4-mapped IPv6
    "http://[fd00::1]/hook",  # unique local
    "http://[fe80::1]/hook",  # link local
    "http://2130706433/hook",  # 127.0.0.1 as one decimal number
    "http://0x7f.0.0.1/hook",  # hexadecimal
    "http://0177.0.0.1/hook",  # octal
    "http://localhost/hook",  # a name that resolves to loopback
]


@pytest.fixture(scope="module")
async def strict_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """Auth, worker and the gateway, with private webhook destinations refused."""
    stack = e2e_stack(tmp_path_factory.mktemp("strict-fleet"))
    stack = stack.with_(extra_env={**stack.extra_env, "WEBHOOKS_ALLOW_PRIVATE": "false"})
    sink = MailSink(stack.mail_dir, port=stack.smtp_port).start()
    s3 = EmulatorProcess(port=stack.s3_port, bucket=stack.s3_bucket, emit=lambda _: None)
    await s3.start()
    await bootstrap(stack, seed=False)
    fleet = Fleet(stack, services=["auth", "worker", "gateway"])
    try:
        await fleet.start()
        await fleet.wait_ready(60)
        yield stack.url("gateway")
    finally:
        await fleet.stop()
        await s3.stop()
        sink.stop()
        await drop_database(stack)


@pytest.mark.parametrize("url", PRIVATE_DESTINATIONS)
async def test_subscribing_a_private_or_metadata_destination_is_refused(
    strict_gateway: str, url: str
) -> None:
    async with httpx.AsyncClient(base_url=strict_gateway, timeout=10) as gateway:
        user = await register_and_login(gateway)
        answer = await gateway.post(
            "/v1/webhooks/subscriptions",
            headers=bearer(user["access_token"]),
            json={"url": url, "events": ["order.confirmed.v1"]},
        )
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("/invalid-webhook-url")


class Redirector:
    """A subscriber that answers every delivery with a redirect to `target`."""

    def __init__(self, target: str) -> None:
        self.calls = 0
        app = FastAPI()

        @app.post("/hook")
        async def hook(_: Request) -> Response:
            self.calls += 1
            return RedirectResponse(target, status_code=307)

        self.app = app


@pytest.fixture
def secret_target() -> Iterator[tuple[str, list[Any]]]:
    """Where a redirect points: it must never be called."""
    seen: list[Any] = []
    app = FastAPI()

    @app.post("/steal")
    async def steal(request: Request) -> Response:
        seen.append(await request.body())
        return Response(status_code=204)

    with serve_in_thread(app) as url:
        yield f"{url}/steal", seen


async def test_a_delivery_answered_with_a_redirect_is_not_followed(
    gateway: httpx.AsyncClient,
    running_fleet: RunningFleet,
    secret_target: tuple[str, list[Any]],
) -> None:
    target, seen = secret_target
    redirector = Redirector(target)
    customer = await register_and_login(gateway)
    with serve_in_thread(redirector.app) as url:
        created = await gateway.post(
            "/v1/webhooks/subscriptions",
            headers=bearer(customer["access_token"]),
            json={"url": f"{url}/hook", "events": ["order.confirmed.v1", "order.rejected.v1"]},
        )
        assert created.status_code == 201, created.text
        deliveries = f"/v1/webhooks/subscriptions/{created.json()['id']}/deliveries"
        # A subscriber gets its own events: its order's decision makes one delivery.
        product = await gateway.get("/v1/products", params={"limit": 1})
        placed = await gateway.post(
            "/v1/orders",
            headers={**bearer(customer["access_token"]), "Idempotency-Key": uuid.uuid4().hex},
            json={"items": [{"product_id": product.json()["items"][0]["id"], "quantity": 1}]},
        )
        assert placed.status_code == 202, placed.text
        settled: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            while not settled:
                page = await gateway.get(deliveries, headers=bearer(customer["access_token"]))
                settled = [d for d in page.json()["items"] if d["status"] != "pending"]
                if not settled:
                    await asyncio.sleep(0.1)
    assert redirector.calls >= 1
    assert settled[0]["status"] == "failed"
    assert settled[0]["last_status_code"] == 307
    assert seen == []
