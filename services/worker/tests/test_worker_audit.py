"""The worker's audit trail: a subscription's creation, pause, resume, secret rotation and deletion
are recorded in `worker.audit_log` (its owner, the subscription, the client address the gateway
forwarded, the request id) in the change's own transaction, with no signing secret and no URL
path or query in it; a change that rolls back leaves no record. Admins read the trail at
`GET /v1/admin/audit`, nobody else."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from worker_sinks import WebhookReceiver
from worker_test_support import WorkerDb

from chassis.db import UnitOfWork, session_factory
from worker.models import WebhookSubscription, audit
from worker.webhooks import service

pytestmark = pytest.mark.integration

AUDIT = audit.table
Customer = Any  # conftest's Customer


async def _rows(db: WorkerDb, *conditions: sa.ColumnElement[bool]) -> list[sa.Row[Any]]:
    async with db.engine.connect() as conn:
        statement = sa.select(AUDIT).where(*conditions).order_by(AUDIT.c.created_at, AUDIT.c.id)
        return list(await conn.execute(statement))


async def test_a_subscriptions_changes_are_recorded_without_its_secrets_or_url_path(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, db: WorkerDb
) -> None:
    def request(request_id: str) -> dict[str, str]:
        return {**customer.headers, "X-Forwarded-For": "192.0.2.9", "X-Request-ID": request_id}

    url = f"{receiver.endpoint().url}?receiver_key=private-{uuid.uuid4().hex}"
    created = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": url, "events": ["order.confirmed.v1"]},
        headers=request("w-create"),
    )
    subscription = f"/v1/webhooks/subscriptions/{created.json()['id']}"
    await client.post(f"{subscription}/pause", headers=request("w-pause"))
    await client.post(f"{subscription}/resume", headers=request("w-resume"))
    rotated = await client.post(
        f"{subscription}/rotate-secret", json={}, headers=request("w-rotate")
    )
    deleted = await client.delete(subscription, headers=request("w-delete"))
    assert (created.status_code, rotated.status_code, deleted.status_code) == (201, 200, 204)

    rows = await _rows(db, AUDIT.c.actor == str(customer.id))

    assert [(r.action, r.request_id) for r in rows] == [
        ("worker.webhook_subscription.create", "w-create"),
        ("worker.webhook_subscription.pause", "w-pause"),
        ("worker.webhook_subscription.resume", "w-resume"),
        ("worker.webhook_subscription.rotate_secret", "w-rotate"),
        ("worker.webhook_subscription.delete", "w-delete"),
    ]
    assert {(r.target, r.outcome, r.client_ip) for r in rows} == {
        (created.json()["id"], "success", "192.0.2.9")
    }
    assert rows[0].details == {"host": "127.0.0.1", "events": ["order.confirmed.v1"]}
    stored = " ".join(str(tuple(row)) for row in rows)
    secrets = [created.json()["secret"], rotated.json()["secret"], url, url.partition("?")[2]]
    assert [s for s in secrets if s in stored] == []


async def test_a_deletion_that_rolls_back_leaves_the_subscription_and_no_record(
    client: httpx.AsyncClient, customer: Customer, receiver: WebhookReceiver, db: WorkerDb
) -> None:
    class CommitFails(UnitOfWork):
        async def commit(self) -> None:
            raise RuntimeError("the commit is lost")

    created = await client.post(
        "/v1/webhooks/subscriptions",
        json={"url": receiver.endpoint().url, "events": ["order.confirmed.v1"]},
        headers=customer.headers,
    )
    subscription_id = uuid.UUID(created.json()["id"])

    with pytest.raises(RuntimeError, match="commit is lost"):
        await service.delete_subscription(
            uow=CommitFails(session_factory(db.engine)),
            owner_id=str(customer.id),
            subscription_id=subscription_id,
        )

    async with db.engine.connect() as conn:
        kept = await conn.scalar(
            sa.select(sa.func.count()).where(WebhookSubscription.id == subscription_id)
        )
    assert kept == 1
    actions = [r.action for r in await _rows(db, AUDIT.c.target == str(subscription_id))]
    assert actions == ["worker.webhook_subscription.create"]


async def test_only_admins_read_the_trail(
    client: httpx.AsyncClient, customer: Customer, new_customer: Any
) -> None:
    admin = new_customer(roles=("admin",))

    anonymous = await client.get("/v1/admin/audit")
    not_admin = await client.get("/v1/admin/audit", headers=customer.headers)
    trail = await client.get("/v1/admin/audit", params={"limit": 1}, headers=admin.headers)

    assert (anonymous.status_code, not_admin.status_code, trail.status_code) == (401, 403, 200)
    assert {item["service"] for item in trail.json()["items"]} <= {"worker"}
