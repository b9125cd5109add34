"""The worker's side effects, for real: signed webhooks and e-mail over SMTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from e2e_support import Receiver, RunningFleet, bearer, create_product, register_and_login

from contracts.webhooks import verify
from fleetctl.testing import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(failures=2) as r:
        yield r


async def _confirmed_order(gateway: httpx.AsyncClient, token: str) -> str:
    product = await create_product(gateway, stock=5, price=500, name="Side effect")
    placed = await gateway.post(
        "/v1/orders",
        headers={**bearer(token), "Idempotency-Key": uuid.uuid4().hex},
        json={"items": [{"product_id": product, "quantity": 1}]},
    )
    assert placed.status_code == 202, placed.text
    order_id = str(placed.json()["id"])
    for _ in range(300):
        order = (await gateway.get(f"/v1/orders/{order_id}", headers=bearer(token))).json()
        if order["status"] == "confirmed":
            return order_id
        await asyncio.sleep(0.05)
    raise AssertionError(f"order {order_id} not confirmed: {order['status']}")


async def test_webhook_is_delivered_once_signed_after_two_server_errors(
    gateway: httpx.AsyncClient, receiver: Receiver
) -> None:
    session = await register_and_login(gateway)
    token = session["access_token"]
    subscribed = await gateway.post(
        "/v1/webhooks/subscriptions",
        headers=bearer(token),
        json={"url": receiver.url, "events": ["order.confirmed.v1"]},
    )
    assert subscribed.status_code == 201, subscribed.text
    secret = subscribed.json()["secret"]
    order_id = await _confirmed_order(gateway, token)
    subscription_id = subscribed.json()["id"]

    async def deliveries() -> list[dict[str, Any]]:
        url = f"/v1/webhooks/subscriptions/{subscription_id}/deliveries"
        answer = await gateway.get(url, headers=bearer(token))
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    async def delivered() -> bool:
        return [d["status"] for d in await deliveries()] == ["delivered"]

    # Recorded as delivered (final: never sent again), so the calls below are all there will be.
    await eventually(delivered, timeout=20)
    assert len(receiver.calls) == 3
    ids = {headers["webhook-id"] for headers, _ in receiver.calls}
    assert len(ids) == 1  # the same event, retried — not three events
    headers, body = receiver.calls[-1]
    verify(secret, headers, body)
    event = json.loads(body)
    assert event["type"] == "order.confirmed.v1"
    assert event["data"]["order_id"] == order_id

    [delivery] = await deliveries()
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)


def _mails_about(running_fleet: RunningFleet, needle: str) -> list[Any]:
    return [m for m in running_fleet.mail.messages() if needle in m.as_string()]


async def _mails_owed(running_fleet: RunningFleet, recipient: str) -> list[tuple[str, str]]:
    """The worker's notifications to `recipient` (kind, status), oldest first."""
    conn = await asyncpg.connect(running_fleet.stack.admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT kind, status FROM worker.notifications WHERE recipient = $1"
            " ORDER BY created_at",
            recipient,
        )
    finally:
        await conn.close()
    return [(row["kind"], row["status"]) for row in rows]


async def test_one_mail_per_confirmed_order_across_a_worker_restart(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    session = await register_and_login(gateway)

    def welcome_mail_sent() -> bool:
        return bool(_mails_about(running_fleet, session["email"]))

    await eventually(welcome_mail_sent, timeout=20)
    await running_fleet.fleet.stop_service("worker")
    try:
        # Confirmed while the worker is down: its events wait in the worker's queue.
        order_id = await _confirmed_order(gateway, session["access_token"])
    finally:
        await running_fleet.restart("worker")
    await eventually(lambda: bool(_mails_about(running_fleet, order_id)), timeout=20)
    await running_fleet.fleet.stop_service("worker")
    await running_fleet.restart("worker")
    # The worker's record of what it owes this customer: one mail per event, both sent, none
    # pending that a restarted worker could send again.
    assert await _mails_owed(running_fleet, session["email"]) == [
        ("welcome", "sent"),
        ("order_confirmed", "sent"),
    ]
    mails = _mails_about(running_fleet, order_id)
    assert len(mails) == 1
    assert mails[0]["To"] == session["email"]
