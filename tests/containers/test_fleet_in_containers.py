"""The fleet as it ships: the images built from services/Dockerfile (`make images`), started from
the charts' own pod specs by `podman kube play` (`make up-containers`), serve the public API end
to end; each pod answers the probes the chart points at it, stops cleanly on SIGTERM within its
grace period, and runs as the chart's securityContext says (UID 10001, read-only root).

Run by `make test-containers` (which builds the images first), not by `make test`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from e2e_support import Receiver, bearer, create_product, e2e_stack, register_and_login

from contracts.webhooks import verify
from fleetctl.bootstrap import drop_database
from fleetctl.containers import ContainerFleet, Naming, detect_engine
from fleetctl.stack import SERVICES
from fleetctl.testing import eventually

pytestmark = pytest.mark.e2e

# Services in the order their stop is tried last (the gateway last: the others' tests need it).
SERVICE_NAMES = [s.name for s in SERVICES]


@pytest.fixture(scope="module")
async def fleet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ContainerFleet]:
    # Its own database, broker names and Redis keys, on the usual ports (the charts fix them).
    stack = e2e_stack(tmp_path_factory.mktemp("containers")).with_(ports={})
    lines: list[str] = []
    running = ContainerFleet(
        stack, lines.append, naming=Naming(f"fleet-test-{uuid.uuid4().hex[:8]}-")
    )
    try:
        await running.start(timeout=240)
        yield running
    finally:
        await asyncio.to_thread(running.stop)
        await drop_database(stack)


@pytest.fixture
async def gateway(fleet: ContainerFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fleet.stack.url("gateway"), timeout=10) as client:
        yield client


def _inspect(fleet: ContainerFleet, service: str) -> dict[str, Any]:
    output = fleet.engine.run("inspect", fleet.container(service)).stdout
    inspected: list[dict[str, Any]] = json.loads(output)
    return inspected[0]


def _exec(fleet: ContainerFleet, service: str, *command: str) -> str:
    return fleet.engine.run("exec", fleet.container(service), *command).stdout


def _probe_port(fleet: ContainerFleet, service: str, probe: str) -> int:
    """The port the Deployment's `probe` targets: its named container port resolved."""
    container = fleet.specs.deployment(service)["spec"]["template"]["spec"]["containers"][0]
    port = container[probe]["httpGet"]["port"]
    if isinstance(port, int):
        return port
    return int(next(p["containerPort"] for p in container["ports"] if p["name"] == port))


async def test_an_order_placed_through_the_gateway_is_confirmed_mailed_hooked_and_cancelled(
    gateway: httpx.AsyncClient, fleet: ContainerFleet
) -> None:
    session = await register_and_login(gateway)
    token = session["access_token"]
    product_id = await create_product(gateway, stock=3, price=700, name="Container item")
    with Receiver() as receiver:
        subscribed = await gateway.post(
            "/v1/webhooks/subscriptions",
            headers=bearer(token),
            json={"url": receiver.url, "events": ["order.confirmed.v1"]},
        )
        assert subscribed.status_code == 201, subscribed.text
        placed = await gateway.post(
            "/v1/orders",
            headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
            json={"items": [{"product_id": product_id, "quantity": 3}]},
        )
        assert placed.status_code == 202, placed.text
        order_id = str(placed.json()["id"])

        async def status() -> str:
            order = await gateway.get(f"/v1/orders/{order_id}", headers=bearer(token))
            return str(order.json()["status"])

        async def confirmed() -> bool:
            return await status() == "confirmed"

        await eventually(confirmed, timeout=30)
        await eventually(lambda: bool(receiver.calls), timeout=30)
        headers, body = receiver.calls[0]
        assert json.loads(body)["data"]["order_id"] == order_id
        verify(subscribed.json()["secret"], headers, body)  # raises unless signed with it

    mail = fleet.mail
    assert mail is not None

    def mailed() -> bool:
        return any(order_id in m.as_string() for m in mail.messages())

    await eventually(mailed, timeout=30)

    async def stock() -> int:
        # Stock moved by the saga: past the gateway's cached copy (gateway.edge_cache).
        current = {"Cache-Control": "no-cache"}
        return int(
            (await gateway.get(f"/v1/products/{product_id}", headers=current)).json()["stock"]
        )

    assert await stock() == 0
    cancelled = await gateway.post(f"/v1/orders/{order_id}/cancel", headers=bearer(token))
    assert cancelled.status_code == 202, cancelled.text

    async def stock_returned() -> bool:
        return await stock() == 3

    await eventually(stock_returned, timeout=30)


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_each_pod_answers_its_probes_on_the_port_the_chart_names(
    fleet: ContainerFleet, service: str
) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        for probe, path in (
            ("startupProbe", "/livez"),
            ("livenessProbe", "/livez"),
            ("readinessProbe", "/readyz"),
        ):
            port = _probe_port(fleet, service, probe)
            assert port == fleet.stack.port(service)
            answer = await client.get(f"http://127.0.0.1:{port}{path}")
            assert answer.status_code == 200, (service, probe, answer.text)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_runs_as_uid_10001_on_a_read_only_root(
    fleet: ContainerFleet, service: str
) -> None:
    status = _exec(fleet, service, "cat", "/proc/1/status")
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uids) == {"10001"}, status
    command = _exec(fleet, service, "cat", "/proc/1/cmdline").split("\0")
    assert command[:4] == ["python", "-m", service, "serve"]
    assert _inspect(fleet, service)["HostConfig"]["ReadonlyRootfs"] is True
    written = fleet.engine.run("exec", fleet.container(service), "touch", "/app/x", check=False)
    assert written.returncode != 0
    assert "Read-only file system" in written.stderr
    # /tmp is the chart's emptyDir: the one place a service may write.
    _exec(fleet, service, "touch", "/tmp/written")  # noqa: S108 - inside the container


@pytest.mark.parametrize("service", ["worker", "orders"])
async def test_sigterm_drains_and_exits_0_within_the_charts_grace_period(
    fleet: ContainerFleet, service: str
) -> None:
    grace = fleet.grace_seconds(service)
    started = time.monotonic()
    # `podman stop` is the kubelet's stop: SIGTERM, SIGKILL once the grace period is over.
    fleet.engine.run("stop", "--time", str(grace), fleet.container(service), timeout=grace + 30)
    elapsed = time.monotonic() - started
    state = fleet.state(service)
    assert state["ExitCode"] == 0, state
    assert elapsed < grace
    logs = fleet.engine.run("logs", fleet.container(service)).stderr
    logs += fleet.engine.run("logs", fleet.container(service)).stdout
    events = [json.loads(line).get("event") for line in logs.splitlines() if line.startswith("{")]
    assert "shutdown_signal" in events
    assert events.index("service_stopped") > events.index("shutdown_signal")
    fleet.engine.run("start", fleet.container(service))


def test_the_engine_is_podman_with_the_projects_settings() -> None:
    engine = detect_engine({})
    assert engine.is_podman
    assert engine.env["CONTAINERS_CONF"].endswith("deploy/podman/containers.conf")
