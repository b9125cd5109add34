"""`/v1/webhooks/subscriptions`: who may subscribe to what, and where webhooks may go."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from worker_sinks import WebhookReceiver

from fleetctl.testing import assert_problem

Customer = Any  # conftest's Customer


async def test_a_subscription_is_created_with_a_secret_shown_once(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver
) -> None:
    url = receiver.endpoint().url
    response = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": url, "events": ["order.confirmed.v1", "order.rejected.v1"]},
        headers=customer.headers,
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "url", "events", "secret"}
    assert body["url"] == url
    assert body["events"] == ["order.confirmed.v1", "order.rejected.v1"]
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 24
    assert response.headers["location"].endswith(body["id"])

    deliveries = await client.get(
        f"/v1/webhooks/subscriptions/{body['id']}/deliveries", headers=customer.headers
    )
    assert deliveries.status_code == 200
    assert deliveries.json() == {"items": []}
    assert body["secret"] not in deliveries.text


async def test_each_subscription_gets_its_own_secret(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver
) -> None:
    request = {"url": receiver.endpoint().url, "events": ["order.confirmed.v1"]}
    first = await client.post("/v1/webhooks/subscriptions", json=request, headers=customer.headers)
    second = await client.post("/v1/webhooks/subscriptions", json=request, headers=customer.headers)
    assert first.json()["secret"] != second.json()["secret"]


async def test_subscribing_needs_a_bearer_token(
    client: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    response = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": receiver.endpoint().url, "events": ["order.confirmed.v1"]},
    )
    assert_problem(response, 401)


@pytest.mark.parametrize(
    "body",
    [
        {"url": "http://127.0.0.1:9/x", "events": []},
        {"url": "http://127.0.0.1:9/x", "events": ["order.shipped.v1"]},
        {"url": "http://127.0.0.1:9/x", "events": ["stock.reserved.v1"]},
        {"url": "http://127.0.0.1:9/x"},
        {"url": "http://127.0.0.1:9/x", "events": ["order.confirmed.v1"], "secret": "mine"},
        {"url": "", "events": ["order.confirmed.v1"]},
    ],
    ids=["no-events", "unknown-type", "type-not-delivered", "events-missing", "extra", "no-url"],
)
async def test_an_invalid_subscription_is_a_validation_problem(
    client: httpx.AsyncClient, customer: Customer, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/webhooks/subscriptions", json=body, headers=customer.headers)
    assert_problem(response, 422, "validation-error")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.com/hook", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("https://user:pass@example.com/hook", "credentials"),
        ("http://:80/hook", "no host"),
        ("http://example.com:99999/hook", "malformed"),
    ],
)
async def test_a_url_that_is_not_plain_http_is_refused(
    client: httpx.AsyncClient, customer: Customer, url: str, why: str
) -> None:
    response = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": url, "events": ["order.confirmed.v1"]},
        headers=customer.headers,
    )
    assert_problem(response, 422, "invalid-webhook-url")
    assert why in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://100.64.0.1/hook",
    ],
)
async def test_private_destinations_are_refused_unless_allowed(
    start_worker: Callable[..., Any], customer: Customer, url: str
) -> None:
    request = {"url": url, "events": ["order.confirmed.v1"]}
    async with start_worker(webhooks_allow_private=False) as strict:
        response = await strict.post(
            "/v1/webhooks/subscriptions", json=request, headers=customer.headers
        )
        assert_problem(response, 422, "invalid-webhook-url")
        assert "not allowed" in response.json()["detail"]
    async with start_worker(webhooks_allow_private=True) as relaxed:
        response = await relaxed.post(
            "/v1/webhooks/subscriptions", json=request, headers=customer.headers
        )
        assert response.status_code == 201, response.text


async def test_a_host_that_does_not_resolve_is_refused(
    start_worker: Callable[..., Any], customer: Customer
) -> None:
    async with start_worker(webhooks_allow_private=False) as strict:
        response = await strict.post(
            "/v1/webhooks/subscriptions",
            json={"url": "https://no-such-host.invalid/hook", "events": ["order.confirmed.v1"]},
            headers=customer.headers,
        )
    assert_problem(response, 422, "invalid-webhook-url")
    assert "does not resolve" in response.json()["detail"]


async def test_someone_elses_deliveries_read_as_not_found(
    client: httpx.AsyncClient,
    new_customer: Callable[..., Customer],
    receiver: WebhookReceiver,
) -> None:
    owner, stranger, admin = new_customer(), new_customer(), new_customer(roles=("admin",))
    created = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": receiver.endpoint().url, "events": ["order.confirmed.v1"]},
        headers=owner.headers,
    )
    path = f"/v1/webhooks/subscriptions/{created.json()['id']}/deliveries"

    assert (await client.get(path, headers=owner.headers)).status_code == 200
    for other in (stranger, admin):
        assert_problem(await client.get(path, headers=other.headers), 404, "subscription-not-found")
    unknown = f"/v1/webhooks/subscriptions/{uuid.uuid4()}/deliveries"
    assert_problem(await client.get(unknown, headers=owner.headers), 404)
    malformed = "/v1/webhooks/subscriptions/not-a-uuid/deliveries"
    assert_problem(await client.get(malformed, headers=owner.headers), 422)
