from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def test_register_creates_an_account_with_a_lower_cased_email(
    client: httpx.AsyncClient, new_email: Callable[[], str]
) -> None:
    email = new_email().replace("user", "Mixed.Case")

    response = await client.post(
        "/v1/auth/register", json={"email": email.upper(), "password": "long enough"}
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "created_at"}
    assert body["email"] == email.lower()
    uuid.UUID(body["id"])
    datetime.fromisoformat(body["created_at"])


async def test_register_twice_with_the_same_email_in_other_case_is_a_conflict(
    client: httpx.AsyncClient, new_email: Callable[[], str]
) -> None:
    email = new_email()
    first = await client.post("/v1/auth/register", json={"email": email, "password": "pass-1234"})
    second = await client.post(
        "/v1/auth/register", json={"email": email.upper(), "password": "other-pass"}
    )

    assert first.status_code == 201
    assert second.status_code == 409
    assert second.headers["content-type"] == PROBLEM
    assert second.json()["status"] == 409
    assert second.json()["request_id"]


async def test_concurrent_registrations_of_one_email_create_exactly_one_account(
    client: httpx.AsyncClient, new_email: Callable[[], str]
) -> None:
    email = new_email()

    responses = await asyncio.gather(
        *(
            client.post("/v1/auth/register", json={"email": email, "password": f"password-{i}"})
            for i in range(6)
        )
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409, 409]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"email": "not-an-email", "password": "long enough"}, id="invalid-email"),
        pytest.param({"email": "a@example.com", "password": "short"}, id="short-password"),
        pytest.param({"email": "a@example.com", "password": "x" * 129}, id="long-password"),
        pytest.param({"email": "a@example.com"}, id="missing-password"),
        pytest.param(
            {"email": "a@example.com", "password": "long enough", "roles": ["admin"]},
            id="extra-field",
        ),
    ],
)
async def test_register_refuses_invalid_bodies_with_a_validation_problem(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/v1/auth/register", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert problem["errors"]
    assert "long enough" not in response.text  # the input is never echoed


async def test_register_with_malformed_json_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", content=b"{", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


async def test_register_losing_the_unique_constraint_race_is_a_conflict_not_a_500(
    app: FastAPI, client: httpx.AsyncClient, new_email: Callable[[], str]
) -> None:
    """Another transaction holds the address uncommitted: the pre-check cannot see it, so the
    insert waits on the unique index and then fails; that must still answer 409."""
    email = new_email()
    engine = app.state.engine
    async with engine.connect() as rival:
        transaction = await rival.begin()
        await rival.execute(
            text("INSERT INTO auth.users (id, email, password_hash) VALUES (:id, :email, 'x')"),
            {"id": uuid.uuid4(), "email": email},
        )
        request = asyncio.create_task(
            client.post("/v1/auth/register", json={"email": email, "password": "long enough"})
        )
        await _until_an_insert_waits_on_a_lock(engine)
        await transaction.commit()
        response = await request

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM


async def _until_an_insert_waits_on_a_lock(engine: AsyncEngine) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO auth.users%'"
    )
    async with asyncio.timeout(10):
        while True:
            async with engine.connect() as conn:
                if await conn.scalar(query):
                    return
            await asyncio.sleep(0.02)
