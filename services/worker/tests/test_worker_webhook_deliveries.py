"""Webhook deliveries: signed, retried with backoff on what may pass later, never on what
cannot, honouring Retry-After, and isolated per subscriber."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from worker_sinks import Reply, WebhookReceiver, closed_port_url
from worker_test_support import (
    Bus,
    WorkerDb,
    event_of,
    order_confirmed,
    sample,
    settled,
    subscribe,
)

from contracts.events import CloudEvent, OrderRejectedV1
from contracts.webhooks import verify
from fleetctl.testing import eventually

Customer = Any  # conftest's Customer


async def test_a_delivery_is_retried_after_server_errors_and_arrives_signed(
    client: httpx.AsyncClient,
    customer: Customer,
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    endpoint = receiver.endpoint(Reply(500), Reply(500), Reply(200))
    subscription = await subscribe(client, customer, endpoint.url)
    await bus.register(customer)
    confirmed = order_confirmed(customer)
    duplicate = {"event_type": "order.confirmed.v1", "outcome": "duplicate"}
    duplicates_before = sample("events_consumed_total", duplicate)

    await bus.publish(confirmed, confirmed)

    # Settled (a delivered delivery is never sent again) and the second copy recorded as a
    # duplicate (no second delivery): no request can follow.
    delivery = await settled(client, customer, subscription, "delivered")
    await eventually(lambda: sample("events_consumed_total", duplicate) > duplicates_before)
    assert len(endpoint.requests) == 3
    assert delivery["event_id"] == str(confirmed.id)
    assert delivery["event_type"] == "order.confirmed.v1"
    assert delivery["attempts"] == 3
    assert delivery["last_status_code"] == 200
    assert delivery["delivered_at"] is not None
    final = endpoint.requests[-1]
    verify(subscription["secret"], final.headers, final.body)
    assert {r.headers["webhook-id"] for r in endpoint.requests} == {str(confirmed.id)}
    assert final.headers["content-type"] == "application/json"
    document = json.loads(final.body)
    assert document["id"] == str(confirmed.id)
    assert document["type"] == "order.confirmed.v1"
    assert document["data"]["user_id"] == str(customer.id)


async def test_a_client_error_fails_the_delivery_at_once(
    client: httpx.AsyncClient,
    customer: Customer,
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    failed_before = sample("webhook_deliveries_total", {"outcome": "failed"})
    endpoint = receiver.endpoint(Reply(400))
    subscription = await subscribe(client, customer, endpoint.url)
    await bus.register(customer)

    await bus.publish(order_confirmed(customer))

    # Failed is final: the dispatcher only ever takes pending deliveries.
    delivery = await settled(client, customer, subscription, "failed")
    assert len(endpoint.requests) == 1
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 400
    assert "not retried" in delivery["last_error"]
    assert sample("webhook_deliveries_total", {"outcome": "failed"}) == failed_before + 1


async def test_retry_after_is_waited_for_at_least(
    client: httpx.AsyncClient,
    customer: Customer,
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    endpoint = receiver.endpoint(Reply(429, {"Retry-After": "2"}), Reply(200))
    subscription = await subscribe(client, customer, endpoint.url)
    await bus.register(customer)

    await bus.publish(order_confirmed(customer))

    delivery = await settled(client, customer, subscription, "delivered")
    first, second = endpoint.requests
    # The backoff alone would retry within 0.1 s.
    assert second.at - first.at >= 1.9
    assert delivery["attempts"] == 2


async def test_a_delivery_is_failed_after_its_attempt_budget(
    start_worker: Callable[..., Any],
    customer: Customer,
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    endpoint = receiver.endpoint(*[Reply(503)] * 10)
    async with start_worker(webhook_max_attempts=4) as client:
        subscription = await subscribe(client, customer, endpoint.url)
        await bus.register(customer)
        await bus.publish(order_confirmed(customer))

        delivery = await settled(client, customer, subscription, "failed")
    assert len(endpoint.requests) == 4
    assert delivery["attempts"] == 4
    assert delivery["last_status_code"] == 503
    assert "gave up after 4 attempts" in delivery["last_error"]


async def test_a_refused_connection_is_logged_as_such_not_as_a_timeout(
    start_worker: Callable[..., Any], customer: Customer, bus: Bus
) -> None:
    async with start_worker(webhook_max_attempts=1) as client:
        subscription = await subscribe(client, customer, closed_port_url())
        await bus.register(customer)
        await bus.publish(order_confirmed(customer))

        delivery = await settled(client, customer, subscription, "failed")
    assert delivery["last_error"].startswith("could not connect: "), delivery["last_error"]
    assert "gave up after 1 attempts" in delivery["last_error"]


async def test_a_slow_or_dead_subscriber_does_not_delay_another(
    start_worker: Callable[..., Any],
    customer: Customer,
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    slow = receiver.endpoint(*[Reply(200, delay=30)] * 20)
    healthy = receiver.endpoint()
    events = [order_confirmed(customer) for _ in range(8)]
    # Few slots in all: without the per-subscription limit the slow backlog would take them.
    settings = {"webhook_concurrency": 4, "webhook_timeout_seconds": 5}
    async with start_worker(**settings) as client:
        await subscribe(client, customer, slow.url)
        await subscribe(client, customer, closed_port_url())
        await subscribe(client, customer, healthy.url)
        await bus.register(customer)
        started = time.monotonic()

        await bus.publish(*events)

        await eventually(lambda: len(healthy.requests) == len(events), timeout=10)
        elapsed = time.monotonic() - started
    # Well within a single timeout of the slow subscriber.
    assert elapsed < 3, elapsed
    assert {r.headers["webhook-id"] for r in healthy.requests} == {str(e.id) for e in events}
    # The slow subscriber never had more than its two slots.
    assert len(slow.requests) <= 2


async def test_a_subscriber_receives_its_own_users_events_and_an_admin_everyones(
    client: httpx.AsyncClient,
    new_customer: Callable[..., Customer],
    receiver: WebhookReceiver,
    bus: Bus,
    db: WorkerDb,
) -> None:
    alice, bob, admin = new_customer(), new_customer(), new_customer(roles=("admin",))
    types = ("order.rejected.v1",)
    alices, admins = receiver.endpoint(), receiver.endpoint()
    await subscribe(client, alice, alices.url, types)
    await subscribe(client, admin, admins.url, types)
    unsubscribed_type = receiver.endpoint()
    await subscribe(client, alice, unsubscribed_type.url, ("order.confirmed.v1",))
    await bus.register(alice)
    await bus.register(bob)

    def rejected(someone: Customer) -> CloudEvent:
        return event_of(
            OrderRejectedV1(order_id=uuid.uuid4(), user_id=someone.id, reason="out of stock")
        )

    for_alice, for_bob = rejected(alice), rejected(bob)
    await bus.publish(for_alice, for_bob)

    async def all_delivered() -> bool:
        rows = [*await db.deliveries(for_alice.id), *await db.deliveries(for_bob.id)]
        return len(rows) == 3 and all(row["status"] == "delivered" for row in rows)

    # Both events handled and their deliveries (the fan-out the worker decided) settled: the
    # requests below are all there will be.
    await eventually(lambda: db.handled(for_alice.id))
    await eventually(lambda: db.handled(for_bob.id))
    await eventually(all_delivered)
    assert [r.headers["webhook-id"] for r in alices.requests] == [str(for_alice.id)]
    assert {r.headers["webhook-id"] for r in admins.requests} == {
        str(for_alice.id),
        str(for_bob.id),
    }
    assert unsubscribed_type.requests == []
    assert len(await db.deliveries(for_bob.id)) == 1


async def test_a_destination_that_became_private_is_not_called(
    start_worker: Callable[..., Any],
    customer: Customer,
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    endpoint = receiver.endpoint()
    async with start_worker(webhooks_allow_private=True) as relaxed:
        subscription = await subscribe(relaxed, customer, endpoint.url)
    # The same subscription, now checked by a worker that refuses loopback at delivery time
    # (as if its DNS name had been re-pointed at an internal address).
    async with start_worker(webhooks_allow_private=False) as strict:
        await bus.register(customer)
        await bus.publish(order_confirmed(customer))
        delivery = await settled(strict, customer, subscription, "failed")
    assert endpoint.requests == []
    assert "loopback" in delivery["last_error"]
    assert delivery["last_status_code"] is None


async def test_deliveries_pending_at_shutdown_are_sent_after_a_restart(
    start_worker: Callable[..., Any],
    customer: Customer,
    receiver: WebhookReceiver,
    bus: Bus,
) -> None:
    endpoint = receiver.endpoint(Reply(503, {"Retry-After": "1"}))
    async with start_worker() as first:
        subscription = await subscribe(first, customer, endpoint.url)
        await bus.register(customer)
        await bus.publish(order_confirmed(customer))
        await eventually(lambda: len(endpoint.requests) == 1)
    async with start_worker() as second:
        delivery = await settled(second, customer, subscription, "delivered")
    assert len(endpoint.requests) == 2
    assert delivery["attempts"] == 2
