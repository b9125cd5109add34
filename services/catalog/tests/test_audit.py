"""Catalog's audit trail: an admin's product creation and update are recorded in
`catalog.audit_log` (the admin, the product, the SKU or the fields changed, the client address the
gateway forwarded, the request id) in the write's own transaction; a write that rolls back leaves
neither product nor record. Admins read the trail at `GET /v1/admin/audit`, nobody else."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog import service
from catalog.cache import ProductCache
from catalog.models import audit
from catalog.schemas import ProductCreate
from chassis.db import UnitOfWork
from fleetctl.tokens import TestTokenIssuer

pytestmark = pytest.mark.integration

AUDIT = audit.table
Body = Callable[..., dict[str, Any]]
Sessions = async_sessionmaker[AsyncSession]


async def _rows(sessions: Sessions, *conditions: sa.ColumnElement[bool]) -> list[sa.Row[Any]]:
    async with sessions() as session:
        statement = sa.select(AUDIT).where(*conditions).order_by(AUDIT.c.created_at, AUDIT.c.id)
        return list(await session.execute(statement))


async def test_an_admins_create_and_update_are_recorded_with_who_where_and_which_request(
    client: httpx.AsyncClient, token_issuer: TestTokenIssuer, product_body: Body, sessions: Sessions
) -> None:
    admin_id = str(uuid.uuid4())
    headers = {
        "Authorization": f"Bearer {token_issuer.issue(subject=admin_id, roles=['admin'])}",
        "X-Forwarded-For": "198.51.100.4",
    }
    body = product_body()
    created = await client.post(
        "/v1/products", json=body, headers={**headers, "X-Request-ID": "c-create"}
    )
    product_id = created.json()["id"]
    await client.patch(
        f"/v1/products/{product_id}",
        json={"price_cents": 1234, "stock": 9},
        headers={**headers, "X-Request-ID": "c-update"},
    )

    rows = await _rows(sessions, AUDIT.c.target == product_id)

    assert [(r.actor, r.action, r.outcome, r.request_id, r.client_ip) for r in rows] == [
        (admin_id, "catalog.product.create", "success", "c-create", "198.51.100.4"),
        (admin_id, "catalog.product.update", "success", "c-update", "198.51.100.4"),
    ]
    assert rows[0].details == {"sku": body["sku"].upper()}
    assert rows[1].details == {"fields": ["price_cents", "stock"]}


async def test_a_creation_that_rolls_back_leaves_neither_product_nor_record(
    product_body: Body, sessions: Sessions, redis: Redis, redis_prefix: str
) -> None:
    class CommitFails(UnitOfWork):
        async def commit(self) -> None:
            raise RuntimeError("the commit is lost")

    product_in = ProductCreate.model_validate(product_body())
    cache = ProductCache(redis, prefix=redis_prefix, ttl_seconds=60, cooldown_seconds=5)

    with pytest.raises(RuntimeError, match="commit is lost"):
        await service.create_product(uow=CommitFails(sessions), cache=cache, product_in=product_in)

    async with sessions() as session:
        products = await session.scalar(
            sa.text("SELECT count(*) FROM catalog.products WHERE sku = :sku"),
            {"sku": product_in.sku},
        )
    assert products == 0
    assert await _rows(sessions, AUDIT.c.details["sku"].astext == product_in.sku) == []


async def test_only_admins_read_the_trail_newest_first(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    user_headers: dict[str, str],
    product_body: Body,
) -> None:
    created = await client.post("/v1/products", json=product_body(), headers=admin_headers)
    product_id = created.json()["id"]
    await client.patch(f"/v1/products/{product_id}", json={"stock": 1}, headers=admin_headers)

    anonymous = await client.get("/v1/admin/audit")
    customer = await client.get("/v1/admin/audit", headers=user_headers)
    trail = await client.get(
        "/v1/admin/audit", params={"action": "catalog.product.update"}, headers=admin_headers
    )

    assert (anonymous.status_code, customer.status_code) == (401, 403)
    newest = trail.json()["items"][0]
    assert (newest["service"], newest["action"], newest["target"]) == (
        "catalog",
        "catalog.product.update",
        product_id,
    )
