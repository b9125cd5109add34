"""Managing one's webhook subscriptions: list, read, delete, pause and resume, rotate the signing
secret, read and redeliver a delivery; someone else's subscription or delivery is not found."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from worker_sinks import Reply, WebhookReceiver
from worker_test_support import (
    Bus,
    WorkerDb,
    delivery_log,
    order_confirmed,
    settled,
    subscribe,
)

from contracts.webhooks import WebhookVerificationError, verify
from fleetctl.testing import assert_problem, eventually

Customer = Any  # conftest's Customer
SUBSCRIPTIONS = "/v1/webhooks/subscriptions"
READ_FIELDS = {"id", "url", "events", "created_at", "status", "paused_at"}
READ_FIELDS |= {"previous_secret_expires_at"}


def _in(seconds: float, iso: str) -> bool:
    """Whether the timestamp `iso` is `seconds` from now (within a minute)."""
    ahead = datetime.fromisoformat(iso) - datetime.now(UTC)
    return abs(ahead - timedelta(seconds=seconds)) < timedelta(minutes=1)


async def test_the_owner_lists_their_subscriptions_newest_first_in_cursor_pages(
    client: httpx.AsyncClient, new_customer: Callable[..., Customer], receiver: WebhookReceiver
) -> None:
    owner, stranger = new_customer(), new_customer()
    created = [await subscribe(client, owner, receiver.endpoint().url) for _ in range(3)]
    await subscribe(client, stranger, receiver.endpoint().url)

    first = await client.get(SUBSCRIPTIONS, params={"limit": 2}, headers=owner.headers)
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"]
    assert cursor
    second = await client.get(
        SUBSCRIPTIONS, params={"limit": 2, "cursor": cursor}, headers=owner.headers
    )
    assert second.status_code == 200, second.text

    items = [*first.json()["items"], *second.json()["items"]]
    assert [item["id"] for item in items] == [s["id"] for s in reversed(created)]
    assert second.json()["next_cursor"] is None
    assert all(set(item) == READ_FIELDS and item["status"] == "active" for item in items)
    for subscription in created:
        assert subscription["secret"] not in first.text + second.text


@pytest.mark.parametrize(
    ("params", "code"),
    [({"cursor": "not-a-cursor"}, "invalid-cursor"), ({"limit": 0}, "validation-error")],
)
async def test_a_bad_page_request_is_a_validation_problem(
    client: httpx.AsyncClient, customer: Customer, params: dict[str, Any], code: str
) -> None:
    response = await client.get(SUBSCRIPTIONS, params=params, headers=customer.headers)
    assert_problem(response, 422, code)


async def test_a_subscription_reads_back_without_its_secret(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver
) -> None:
    url = receiver.endpoint().url
    created = await subscribe(client, customer, url, ("order.rejected.v1",))

    response = await client.get(f"{SUBSCRIPTIONS}/{created['id']}", headers=customer.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == READ_FIELDS
    assert body["id"] == created["id"]
    assert body["url"] == url
    assert body["events"] == ["order.rejected.v1"]
    assert body["status"] == "active"
    assert body["paused_at"] is None
    assert body["previous_secret_expires_at"] is None
    assert created["secret"] not in response.text


async def test_a_deleted_subscription_is_gone_and_sent_nothing_more(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, bus: Bus, db: WorkerDb
) -> None:
    gone_endpoint, kept_endpoint = receiver.endpoint(), receiver.endpoint()
    gone = await subscribe(client, customer, gone_endpoint.url)
    kept = await subscribe(client, customer, kept_endpoint.url)
    path = f"{SUBSCRIPTIONS}/{gone['id']}"

    response = await client.delete(path, headers=customer.headers)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert_problem(await client.get(path, headers=customer.headers), 404, "subscription-not-found")
    assert_problem(await client.delete(path, headers=customer.headers), 404)
    assert_problem(await client.get(f"{path}/deliveries", headers=customer.headers), 404)
    listed = await client.get(SUBSCRIPTIONS, headers=customer.headers)
    assert [item["id"] for item in listed.json()["items"]] == [kept["id"]]

    await bus.register(customer)
    event = order_confirmed(customer)
    await bus.publish(event)
    await settled(client, customer, kept, "delivered")
    assert [str(row["subscription_id"]) for row in await db.deliveries(event.id)] == [kept["id"]]
    assert gone_endpoint.requests == []


async def test_a_paused_subscription_holds_its_deliveries_and_sends_them_on_resume(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, bus: Bus
) -> None:
    held_endpoint, active_endpoint = receiver.endpoint(), receiver.endpoint()
    held = await subscribe(client, customer, held_endpoint.url)
    active = await subscribe(client, customer, active_endpoint.url)
    path = f"{SUBSCRIPTIONS}/{held['id']}"

    paused = await client.post(f"{path}/pause", headers=customer.headers)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["paused_at"] is not None
    again = await client.post(f"{path}/pause", headers=customer.headers)
    assert again.json()["paused_at"] == paused.json()["paused_at"]

    await bus.register(customer)
    event = order_confirmed(customer)
    await bus.publish(event)

    # The active subscription's delivery, due at the same moment, was claimed by the same
    # dispatcher pass that would have claimed the held one: by now it would have been tried.
    await settled(client, customer, active, "delivered")
    (waiting,) = await delivery_log(client, customer, held)
    assert waiting["event_id"] == str(event.id)
    assert waiting["status"] == "pending"
    assert waiting["attempts"] == 0
    assert held_endpoint.requests == []

    resumed = await client.post(f"{path}/resume", headers=customer.headers)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "active"
    assert resumed.json()["paused_at"] is None
    delivered = await settled(client, customer, held, "delivered")
    assert delivered["attempts"] == 1
    (request,) = held_endpoint.requests
    assert request.headers["webhook-id"] == str(event.id)
    verify(held["secret"], request.headers, request.body)


async def test_a_failed_delivery_is_redelivered_with_the_same_webhook_id_and_body(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, bus: Bus
) -> None:
    endpoint = receiver.endpoint(Reply(410))
    subscription = await subscribe(client, customer, endpoint.url)
    await bus.register(customer)
    event = order_confirmed(customer)
    await bus.publish(event)
    failed = await settled(client, customer, subscription, "failed")
    path = f"{SUBSCRIPTIONS}/{subscription['id']}/deliveries/{failed['id']}"

    response = await client.post(f"{path}/redeliver", headers=customer.headers)

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["id"] == failed["id"]
    assert accepted["status"] == "pending"
    assert accepted["attempts"] == 0
    delivered = await settled(client, customer, subscription, "delivered")
    assert delivered["id"] == failed["id"]
    assert delivered["attempts"] == 1
    assert delivered["last_status_code"] == 200
    first, second = endpoint.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(event.id)
    assert first.body == second.body
    verify(subscription["secret"], second.headers, second.body)

    # A delivered one can be sent again too (a receiver that lost what it had processed).
    again = await client.post(f"{path}/redeliver", headers=customer.headers)
    assert again.status_code == 202, again.text
    await eventually(lambda: len(endpoint.requests) == 3)
    assert endpoint.requests[2].body == first.body
    read = await client.get(path, headers=customer.headers)
    assert read.status_code == 200, read.text
    assert read.json()["id"] == failed["id"]


async def test_a_pending_delivery_is_not_redelivered(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, bus: Bus
) -> None:
    subscription = await subscribe(client, customer, receiver.endpoint().url)
    path = f"{SUBSCRIPTIONS}/{subscription['id']}"
    await client.post(f"{path}/pause", headers=customer.headers)
    await bus.register(customer)
    await bus.publish(order_confirmed(customer))

    async def held() -> bool:
        return bool(await delivery_log(client, customer, subscription))

    await eventually(held)
    (pending,) = await delivery_log(client, customer, subscription)

    response = await client.post(
        f"{path}/deliveries/{pending['id']}/redeliver", headers=customer.headers
    )

    assert_problem(response, 409, "delivery-pending")


async def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends_then_the_new_only(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, bus: Bus, db: WorkerDb
) -> None:
    endpoint = receiver.endpoint()
    subscription = await subscribe(client, customer, endpoint.url)
    old = subscription["secret"]
    path = f"{SUBSCRIPTIONS}/{subscription['id']}"

    response = await client.post(f"{path}/rotate-secret", headers=customer.headers)

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert set(rotated) == {"id", "secret", "previous_secret_expires_at"}
    new = rotated["secret"]
    assert new.startswith("whsec_")
    assert new != old
    assert _in(24 * 3600, rotated["previous_secret_expires_at"])
    read = await client.get(path, headers=customer.headers)
    assert read.json()["previous_secret_expires_at"] == rotated["previous_secret_expires_at"]
    assert old not in read.text
    assert new not in read.text

    await bus.register(customer)
    await bus.publish(order_confirmed(customer))
    await eventually(lambda: len(endpoint.requests) == 1)
    during = endpoint.requests[0]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verify(old, during.headers, during.body)  # a receiver not yet changed over
    verify(new, during.headers, during.body)  # one that already has

    await db.end_secret_overlap(subscription["id"])
    await bus.publish(order_confirmed(customer))
    await eventually(lambda: len(endpoint.requests) == 2)
    after = endpoint.requests[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verify(new, after.headers, after.body)
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(old, after.headers, after.body)


async def test_the_overlap_is_the_configured_one_unless_the_rotation_asks_for_another(
    start_worker: Callable[..., Any], customer: Customer, receiver: WebhookReceiver, bus: Bus
) -> None:
    endpoint = receiver.endpoint()
    async with start_worker(webhook_secret_overlap_hours=2) as client:
        subscription = await subscribe(client, customer, endpoint.url)
        rotate = f"{SUBSCRIPTIONS}/{subscription['id']}/rotate-secret"

        configured = (await client.post(rotate, headers=customer.headers)).json()
        asked = (
            await client.post(rotate, json={"overlap_seconds": 600}, headers=customer.headers)
        ).json()
        leaked = (
            await client.post(rotate, json={"overlap_seconds": 0}, headers=customer.headers)
        ).json()

        assert _in(2 * 3600, configured["previous_secret_expires_at"])
        assert _in(600, asked["previous_secret_expires_at"])
        assert leaked["previous_secret_expires_at"] is None
        await bus.register(customer)
        await bus.publish(order_confirmed(customer))
        await eventually(lambda: len(endpoint.requests) == 1)
    (request,) = endpoint.requests
    verify(leaked["secret"], request.headers, request.body)
    for replaced in (subscription["secret"], configured["secret"], asked["secret"]):
        with pytest.raises(WebhookVerificationError, match="no valid signature"):
            verify(replaced, request.headers, request.body)


@pytest.mark.parametrize(
    "body",
    [
        {"overlap_seconds": -1},
        {"overlap_seconds": 7 * 24 * 3600 + 1},
        {"overlap_seconds": "a day"},
        {"overlap": 60},
        [60],
    ],
    ids=["negative", "past-the-maximum", "not-a-number", "unknown-field", "not-an-object"],
)
async def test_a_bad_rotation_request_is_a_validation_problem_and_rotates_nothing(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, body: Any
) -> None:
    subscription = await subscribe(client, customer, receiver.endpoint().url)
    path = f"{SUBSCRIPTIONS}/{subscription['id']}"

    response = await client.post(f"{path}/rotate-secret", json=body, headers=customer.headers)

    assert_problem(response, 422, "validation-error")
    read = await client.get(path, headers=customer.headers)
    assert read.json()["previous_secret_expires_at"] is None


async def test_a_rotation_body_that_is_not_json_is_a_bad_request(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver
) -> None:
    subscription = await subscribe(client, customer, receiver.endpoint().url)
    response = await client.post(
        f"{SUBSCRIPTIONS}/{subscription['id']}/rotate-secret",
        content=b"{overlap",
        headers={**customer.headers, "content-type": "application/json"},
    )
    assert_problem(response, 400)


async def test_someone_elses_subscription_and_delivery_are_not_found_on_every_route(
    client: httpx.AsyncClient,
    new_customer: Callable[..., Customer],
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    owner, stranger, admin = new_customer(), new_customer(), new_customer(roles=("admin",))
    subscription = await subscribe(client, owner, receiver.endpoint().url)
    await bus.register(owner)
    await bus.publish(order_confirmed(owner))
    delivery = await settled(client, owner, subscription, "delivered")
    path = f"{SUBSCRIPTIONS}/{subscription['id']}"
    delivery_path = f"{path}/deliveries/{delivery['id']}"
    # Each change would show if it went through: resumed before paused (it would stay paused),
    # deleted last.
    routes = [
        ("GET", path),
        ("POST", f"{path}/resume"),
        ("POST", f"{path}/pause"),
        ("POST", f"{path}/rotate-secret"),
        ("GET", f"{path}/deliveries"),
        ("GET", delivery_path),
        ("POST", f"{delivery_path}/redeliver"),
        ("DELETE", path),
    ]

    for other in (stranger, admin):
        for method, route in routes:
            response = await client.request(method, route, headers=other.headers)
            assert_problem(response, 404, "subscription-not-found")
        listed = await client.get(SUBSCRIPTIONS, headers=other.headers)
        assert subscription["id"] not in listed.text

    read = await client.get(path, headers=owner.headers)
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "active"
    assert read.json()["previous_secret_expires_at"] is None
    unchanged = (await client.get(delivery_path, headers=owner.headers)).json()
    assert (unchanged["status"], unchanged["attempts"]) == ("delivered", 1)


async def test_a_delivery_is_found_only_under_its_own_subscription(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, bus: Bus
) -> None:
    subscription = await subscribe(client, customer, receiver.endpoint().url)
    other = await subscribe(client, customer, receiver.endpoint().url, ("order.rejected.v1",))
    await bus.register(customer)
    await bus.publish(order_confirmed(customer))
    delivery = await settled(client, customer, subscription, "delivered")

    elsewhere = f"{SUBSCRIPTIONS}/{other['id']}/deliveries/{delivery['id']}"
    assert_problem(await client.get(elsewhere, headers=customer.headers), 404, "delivery-not-found")
    assert_problem(
        await client.post(f"{elsewhere}/redeliver", headers=customer.headers),
        404,
        "delivery-not-found",
    )
    unknown = f"{SUBSCRIPTIONS}/{subscription['id']}/deliveries/{uuid.uuid4()}"
    assert_problem(await client.get(unknown, headers=customer.headers), 404, "delivery-not-found")
    malformed = f"{SUBSCRIPTIONS}/{subscription['id']}/deliveries/not-a-uuid"
    assert_problem(await client.get(malformed, headers=customer.headers), 422)


async def test_the_worker_documents_every_management_operation_and_its_links_resolve(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    subscription = f"{SUBSCRIPTIONS}/{{subscription_id}}"
    delivery = f"{subscription}/deliveries/{{delivery_id}}"
    assert set(paths[SUBSCRIPTIONS]) == {"get", "post"}
    assert set(paths[subscription]) == {"get", "delete"}
    for action in ("pause", "resume", "rotate-secret"):
        assert set(paths[f"{subscription}/{action}"]) == {"post"}
    assert set(paths[delivery]) == {"get"}
    redeliver = paths[f"{delivery}/redeliver"]["post"]["responses"]
    assert {"202", "404", "409"} <= set(redeliver)
    rotate = paths[f"{subscription}/rotate-secret"]["post"]
    assert not rotate["requestBody"].get("required", False)
    operations = {op["operationId"] for ops in paths.values() for op in ops.values()}
    links = paths[SUBSCRIPTIONS]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} <= operations
    assert set(links) == {"ListDeliveries"}
