"""Registering announces `user.registered.v1` through the outbox, atomically with the user."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from auth.models import outbox
from auth.settings import AuthSettings


def unique_email() -> str:
    return f"event-{uuid.uuid4().hex[:12]}@example.com"


async def _outbox_rows(app: FastAPI, email: str) -> list[dict[str, Any]]:
    table = outbox.table
    async with app.state.engine.connect() as conn:
        bodies = (
            (
                await conn.execute(
                    sa.select(table.c.body).where(table.c.event_type == "user.registered.v1")
                )
            )
            .scalars()
            .all()
        )
    return [b for b in bodies if b["data"]["email"] == email]


async def test_registration_is_published_as_user_registered(
    app: FastAPI, client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    connection = await aio_pika.connect_robust(settings.amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            settings.amqp_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="user.registered.v1")
        email = unique_email()
        response = await client.post(
            "/v1/auth/register", json={"email": email, "password": "correct horse battery"}
        )
        assert response.status_code == 201
        message = await _next_for(queue, email)
    finally:
        await connection.close()
    body = json.loads(message)
    assert body["source"] == "/fleet/auth"
    assert body["subject"] == body["data"]["user_id"] == response.json()["id"]
    assert "password" not in json.dumps(body)


async def _next_for(queue: aio_pika.abc.AbstractQueue, email: str) -> bytes:
    async def take() -> bytes:
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                if json.loads(message.body)["data"]["email"] == email:
                    return message.body
        raise AssertionError("queue closed")

    return await asyncio.wait_for(take(), 10)


async def test_refused_registration_stages_no_event(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    email = unique_email()
    first = await client.post("/v1/auth/register", json={"email": email, "password": "pw-123456"})
    again = await client.post("/v1/auth/register", json={"email": email, "password": "pw-123456"})
    assert (first.status_code, again.status_code) == (201, 409)
    assert len(await _outbox_rows(app, email)) == 1
