"""Debian's Prometheus, started as `make observe` starts it (`fleetctl.observe`), scraping the
running fleet every second and evaluating the committed SLO rules: after a journey through the
gateway every dashboard query answers with data, every SLO recording rule records its series,
every rule group is loaded and healthy, and stopping orders pages through the generated
`OrdersAvailabilityFastBurn` rule itself.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from e2e_support import (
    Receiver,
    RunningFleet,
    bearer,
    create_product,
    free_ports,
    register_and_login,
)

from fleet_observability import promql, render
from fleet_slo.rules_file import rule_groups
from fleetctl.observe import Observation, RunningPrometheus, running
from fleetctl.testing import eventually

pytestmark = pytest.mark.e2e

SCRAPE_SECONDS = 1.0  # scrape and rule evaluation interval
JOURNEYS = 2
ORDERS = 2  # per journey
PAGE = "OrdersAvailabilityFastBurn"
# The SLOs whose error ratio the journey gives events to (all of them): each is a number, not
# the NaN of a ratio without events.
JOURNEY_SLOS = {
    ("gateway", "availability"),
    ("gateway", "place-order-latency"),
    ("auth", "availability"),
    ("catalog", "availability"),
    ("catalog", "read-latency"),
    ("orders", "availability"),
    ("orders", "confirmation-latency"),
    ("worker", "webhook-delivery"),
    ("worker", "email-delivery"),
}
# The SLOs the journey gives no events to: exports (test_exports_and_reconciliation.py asks for
# them); their error ratios are recorded, as the NaN of 0 / 0.
NO_JOURNEY_SLOS = {
    ("worker", "export-ready-time"),
    ("worker", "export-success"),
}


@dataclass
class Prometheus:
    """The HTTP API of a running Prometheus."""

    server: RunningPrometheus
    api: httpx.AsyncClient

    async def _data(self, path: str, **params: str) -> Any:
        answer = await self.api.get(f"/api/v1/{path}", params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now (empty when it selects nothing)."""
        data = await self._data("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    async def number(self, expr: str) -> float:
        (sample,) = await self.query(expr)
        return float(sample["value"][1])

    async def rule_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = (await self._data("rules"))["groups"]
        return groups

    async def alerts(self, name: str) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = (await self._data("alerts"))["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == name]

    async def scrapes_every_service(self) -> bool:
        targets = (await self._data("targets"))["activeTargets"]
        up = {t["labels"]["job"] for t in targets if t["health"] == "up"}
        return up == set(self.server.observation.targets())


@dataclass(frozen=True)
class Journey:
    token: str  # the customer's access token


@pytest.fixture(scope="module")
async def prometheus(
    running_fleet: RunningFleet, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Prometheus]:
    home = tmp_path_factory.mktemp("prometheus")
    observation = Observation(
        running_fleet.stack,
        port=free_ports(1)[0],
        interval_seconds=SCRAPE_SECONDS,
        directory=home,
    )
    with (home / "prometheus.log").open("w") as log:
        async with (
            running(observation, output=log) as server,
            httpx.AsyncClient(base_url=server.url, timeout=10) as api,
        ):
            observed = Prometheus(server, api)
            # Prometheus hands new targets to its scrapers at most every 5 s.
            await eventually(observed.scrapes_every_service, timeout=30, interval=0.2)
            yield observed


async def _confirmed(gateway: httpx.AsyncClient, token: str, product_id: str) -> None:
    placed = await gateway.post(
        "/v1/orders",
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"product_id": product_id, "quantity": 1}]},
    )
    assert placed.status_code == 202, placed.text
    url = f"/v1/orders/{placed.json()['id']}"

    async def confirmed() -> bool:
        order = (await gateway.get(url, headers=bearer(token))).json()
        assert order["status"] in {"pending", "confirmed"}, order
        return bool(order["status"] == "confirmed")

    await eventually(confirmed, timeout=20)


async def _customer(gateway: httpx.AsyncClient, product_id: str, webhook_url: str) -> str:
    """One customer's journey: sign-up and sign-in, catalog reads, a webhook subscription, orders
    placed until confirmed (stock reserved, e-mails sent, webhooks due). Their access token."""
    session = await register_and_login(gateway)
    token = session["access_token"]
    assert (await gateway.get("/v1/auth/me", headers=bearer(token))).status_code == 200
    assert (await gateway.get("/v1/products", params={"limit": 2})).status_code == 200
    assert (await gateway.get(f"/v1/products/{product_id}")).status_code == 200
    assert (await gateway.get("/v1/bff/home", headers=bearer(token))).status_code == 200
    subscribed = await gateway.post(
        "/v1/webhooks/subscriptions",
        headers=bearer(token),
        json={"url": webhook_url, "events": ["order.confirmed.v1"]},
    )
    assert subscribed.status_code == 201, subscribed.text
    for _ in range(ORDERS):
        await _confirmed(gateway, token, product_id)
    return token


@pytest.fixture(scope="module")
async def journey(prometheus: Prometheus, running_fleet: RunningFleet) -> Journey:
    """Customers' journeys through the gateway while Prometheus scrapes, done once Prometheus
    has scraped every service after the last one.

    Two customers, one after the other: Prometheus sees a counter grow only between two of its
    samples, and a label set first exported with its first event (a route's first 201) starts
    at 1; the first journey makes every series exist, the second is traffic rates can see."""
    token = ""
    with Receiver() as receiver:
        async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as gateway:
            product_id = await create_product(gateway, stock=ORDERS * JOURNEYS, name="Observed")
            for done in range(1, JOURNEYS + 1):
                token = await _customer(gateway, product_id, receiver.url)

                def delivered(calls: int = ORDERS * done) -> bool:
                    return len(receiver.calls) >= calls

                await eventually(delivered, timeout=20)
                finished = time.time()

                async def scraped_since(moment: float = finished) -> bool:
                    return await prometheus.number("min(timestamp(up))") > moment

                await eventually(scraped_since, timeout=10, interval=0.2)
    return Journey(token=token)


async def test_prometheus_loads_every_slo_rule_group_and_evaluates_every_rule_healthy(
    prometheus: Prometheus,
) -> None:
    committed = {
        group["name"]: len(group["rules"])
        for group in rule_groups(prometheus.server.observation.rules_dir)
    }
    loaded: dict[str, list[str]] = {}

    async def all_evaluated_ok() -> bool:
        groups = await prometheus.rule_groups()
        loaded.clear()
        loaded.update({g["name"]: [r["health"] for r in g["rules"]] for g in groups})
        return all(health == "ok" for healths in loaded.values() for health in healths)

    with contextlib.suppress(AssertionError):
        await eventually(all_evaluated_ok, timeout=15, interval=0.2)
    assert {name: len(healths) for name, healths in loaded.items()} == committed
    unhealthy = {name: h for name, h in loaded.items() if set(h) != {"ok"}}
    assert not unhealthy, f"rule groups with rules not evaluated ok: {unhealthy}"


def _dashboard_queries() -> list[tuple[str, str]]:
    """(dashboard / panel, query as Grafana sends it) for every target of every panel."""
    found = []
    for path in sorted((render.repo_root() / render.OUTPUT_DIR).glob("*.json")):
        for panel in render.panels(json.loads(path.read_text(encoding="utf-8"))):
            for target in panel["targets"]:
                sent = promql.as_grafana_sends(
                    target["expr"],
                    scrape_interval_seconds=SCRAPE_SECONDS,  # the data source's scrape interval
                    interval_seconds=SCRAPE_SECONDS,  # a short range: the step is one scrape
                    range_seconds=300,
                )
                found.append((f"{path.stem} / {panel['title']}", sent))
    return found


async def _empty(prometheus: Prometheus, queries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(where, expr) for where, expr in queries if not await prometheus.query(expr)]


async def test_every_dashboard_panel_query_returns_data_after_a_journey(
    prometheus: Prometheus, journey: Journey
) -> None:
    queries = _dashboard_queries()
    assert len(queries) > 100
    empty = queries

    async def all_answered() -> bool:
        nonlocal empty
        empty = await _empty(prometheus, empty)
        return not empty

    with contextlib.suppress(AssertionError):
        await eventually(all_answered, timeout=15, interval=0.5)
    assert not empty, f"dashboard queries without data after a journey: {empty}"


async def test_every_slo_recording_rule_records_a_ratio_of_the_journey(
    prometheus: Prometheus, journey: Journey
) -> None:
    recorded = [
        (rule["record"], rule["labels"]["service"], rule["labels"]["slo"])
        for group in rule_groups(prometheus.server.observation.rules_dir)
        for rule in group["rules"]
        if rule.get("record", "").startswith("slo:")
    ]
    assert {(service, slo) for _, service, slo in recorded} == JOURNEY_SLOS | NO_JOURNEY_SLOS
    queries = [
        (f"{service} {slo}", f'{record}{{service="{service}",slo="{slo}"}}')
        for record, service, slo in recorded
    ]
    empty = queries

    async def all_recorded() -> bool:
        nonlocal empty
        empty = await _empty(prometheus, empty)
        return not empty

    with contextlib.suppress(AssertionError):
        await eventually(all_recorded, timeout=15, interval=0.5)
    assert not empty, f"recording rules without series: {empty}"
    # The shortest window holds only the journey: a ratio of its events, not 0 / 0.
    ratios = {
        (service, slo): await prometheus.number(
            f'slo:sli_error:ratio_rate5m{{service="{service}",slo="{slo}"}}'
        )
        for service, slo in JOURNEY_SLOS
    }
    undefined = sorted(key for key, ratio in ratios.items() if math.isnan(ratio))
    assert not undefined, f"error ratios without events after the journey: {undefined}"
    assert all(0 <= ratio <= 1 for ratio in ratios.values()), ratios


async def test_stopping_orders_fires_its_availability_page_through_the_generated_rule(
    prometheus: Prometheus, journey: Journey, running_fleet: RunningFleet
) -> None:
    (rule,) = [
        rule
        for group in await prometheus.rule_groups()
        for rule in group["rules"]
        if rule["name"] == PAGE
    ]
    # No `for:`: the short window already debounces it, so it fires at its first evaluation over
    # the threshold (never pending).
    assert rule["duration"] == 0
    assert rule["labels"] == {"severity": "page", "service": "orders", "slo": "availability"}
    assert await prometheus.alerts(PAGE) == [], "the journey alone paged"
    await running_fleet.fleet.stop_service("orders")
    try:
        async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as gateway:

            async def paged() -> bool:
                # Customers keep asking for their orders, and the gateway cannot get them.
                answer = await gateway.get("/v1/orders", headers=bearer(journey.token))
                assert answer.status_code == 503, answer.text
                return [a["state"] for a in await prometheus.alerts(PAGE)] == ["firing"]

            await eventually(paged, timeout=30, interval=0.2)
        # Orders itself is not scraped and answered no 5xx: the page comes from the calls the
        # gateway could not get answered.
        assert await prometheus.number('up{job="orders"}') == 0
        own_5xx = 'sum(increase(http_requests_total{job="orders",status=~"5.."}[1h])) or vector(0)'
        assert await prometheus.number(own_5xx) == 0
        (alert,) = await prometheus.alerts(PAGE)
        assert alert["annotations"]["runbook_url"].endswith(f"/docs/runbooks/{PAGE}.md")
    finally:
        await running_fleet.restart("orders")
        async with httpx.AsyncClient(base_url=running_fleet.gateway, timeout=10) as gateway:

            async def served_again() -> bool:
                answer = await gateway.get("/v1/orders", headers=bearer(journey.token))
                return answer.status_code == 200

            # Once the gateway's circuit to orders is closed again, for the tests that follow.
            await eventually(served_again, timeout=20, interval=0.2)
