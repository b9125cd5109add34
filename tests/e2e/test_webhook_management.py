"""A subscriber manages its webhook subscription through the gateway: reads it, pauses and
resumes it, rotates its secret (both secrets sign during the overlap, the new one only after it),
has a delivery sent again and deletes it; another user finds none of it."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from e2e_support import (
    Receiver,
    RunningFleet,
    bearer,
    confirmed_order,
    create_product,
    register_and_login,
)

from contracts.webhooks import WebhookVerificationError, verify
from fleetctl.testing import assert_problem, eventually

pytestmark = pytest.mark.e2e

SUBSCRIPTIONS = "/v1/webhooks/subscriptions"


async def _end_secret_overlap(running_fleet: RunningFleet, subscription_id: str) -> None:
    """What the worker sees once the overlap window has passed, without waiting a day for it."""
    conn = await asyncpg.connect(running_fleet.stack.admin_dsn)
    try:
        status = await conn.execute(
            "UPDATE worker.webhook_subscriptions"
            " SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1",
            uuid.UUID(subscription_id),
        )
    finally:
        await conn.close()
    assert status == "UPDATE 1"


async def test_a_subscriber_manages_its_webhook_subscription_through_the_gateway(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    owner_token = (await register_and_login(gateway))["access_token"]
    owner = bearer(owner_token)
    stranger = bearer((await register_and_login(gateway))["access_token"])
    product = await create_product(gateway, stock=10, price=700, name="Webhook management")
    with Receiver() as receiver:
        subscribing = {"url": receiver.url, "events": ["order.confirmed.v1"]}
        created = await gateway.post(SUBSCRIPTIONS, headers=owner, json=subscribing)
        assert created.status_code == 201, created.text
        subscription_id, old = created.json()["id"], created.json()["secret"]
        path = f"{SUBSCRIPTIONS}/{subscription_id}"

        listed = await gateway.get(SUBSCRIPTIONS, headers=owner, params={"limit": 10})
        assert [item["id"] for item in listed.json()["items"]] == [subscription_id]
        assert listed.json()["next_cursor"] is None
        assert old not in listed.text

        async def deliveries() -> list[dict[str, Any]]:
            answer = await gateway.get(f"{path}/deliveries", headers=owner)
            items: list[dict[str, Any]] = answer.json()["items"]
            return items

        # Paused: the confirmation is recorded and held, then sent on resume.
        paused = await gateway.post(f"{path}/pause", headers=owner)
        assert paused.json()["status"] == "paused", paused.text
        first_order = await confirmed_order(gateway, owner_token, product)

        async def recorded() -> bool:
            return bool(await deliveries())

        await eventually(recorded, timeout=20)
        (held,) = await deliveries()
        assert (held["status"], held["attempts"]) == ("pending", 0)
        assert receiver.calls == []
        resumed = await gateway.post(f"{path}/resume", headers=owner)
        assert resumed.json()["status"] == "active", resumed.text
        await eventually(lambda: len(receiver.calls) == 1, timeout=20)
        verify(old, *receiver.calls[0])
        assert first_order in receiver.calls[0][1].decode()

        # Rotated: during the overlap a receiver with either secret accepts the delivery.
        rotated = await gateway.post(f"{path}/rotate-secret", headers=owner)
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert rotated.json()["previous_secret_expires_at"] is not None
        await confirmed_order(gateway, owner_token, product)
        await eventually(lambda: len(receiver.calls) == 2, timeout=20)
        during_headers, during_body = receiver.calls[1]
        verify(old, during_headers, during_body)
        verify(new, during_headers, during_body)

        # After the overlap only the new secret signs: the first delivery, sent again, shows it
        # (with the webhook-id the receiver saw before, so it can drop the copy).
        await _end_secret_overlap(running_fleet, subscription_id)
        redelivered = await gateway.post(f"{path}/deliveries/{held['id']}/redeliver", headers=owner)
        assert redelivered.status_code == 202, redelivered.text
        await eventually(lambda: len(receiver.calls) == 3, timeout=20)
        after_headers, after_body = receiver.calls[2]
        assert after_headers["webhook-id"] == receiver.calls[0][0]["webhook-id"]
        assert after_body == receiver.calls[0][1]
        verify(new, after_headers, after_body)
        with pytest.raises(WebhookVerificationError, match="no valid signature"):
            verify(old, after_headers, after_body)

    # Another user: not found, whatever the route (and nothing listed).
    delivery_path = f"{path}/deliveries/{held['id']}"
    for method, route in [
        ("GET", path),
        ("POST", f"{path}/pause"),
        ("POST", f"{path}/rotate-secret"),
        ("GET", delivery_path),
        ("POST", f"{delivery_path}/redeliver"),
        ("DELETE", path),
    ]:
        assert_problem(await gateway.request(method, route, headers=stranger), 404)
    assert (await gateway.get(SUBSCRIPTIONS, headers=stranger)).json()["items"] == []

    deleted = await gateway.delete(path, headers=owner)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await gateway.get(path, headers=owner), 404, "subscription-not-found")
