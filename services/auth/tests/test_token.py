from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import text

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def _token(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    return await client.post("/v1/auth/token", data=form)


async def test_password_grant_issues_tokens_that_open_me(
    client: httpx.AsyncClient, account: Any, auth_header: Callable[[str], dict[str, str]]
) -> None:
    response = await _token(
        client, grant_type="password", username=account.email.upper(), password=account.password
    )

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    me = await client.get("/v1/auth/me", headers=auth_header(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {"id": account.id, "email": account.email, "roles": []}


async def test_unknown_user_and_wrong_password_get_the_identical_401(
    client: httpx.AsyncClient, account: Any, new_email: Callable[[], str]
) -> None:
    wrong_password = await _token(
        client, grant_type="password", username=account.email, password="not the password"
    )
    unknown_user = await _token(
        client, grant_type="password", username=new_email(), password="not the password"
    )

    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["error"] == "invalid_grant"

    def comparable(response: httpx.Response) -> dict[str, Any]:
        return {k: v for k, v in response.json().items() if k != "request_id"}

    assert comparable(wrong_password) == comparable(unknown_user)
    assert wrong_password.headers["www-authenticate"] == unknown_user.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("form", "oauth_error"),
    [
        pytest.param({}, "invalid_request", id="missing-grant-type"),
        pytest.param({"grant_type": "authorization_code"}, "unsupported_grant_type", id="other"),
        pytest.param(
            {"grant_type": "password", "username": "a@example.com"},
            "invalid_request",
            id="password-grant-without-password",
        ),
        pytest.param(
            {"grant_type": "refresh_token"}, "invalid_request", id="refresh-grant-without-token"
        ),
    ],
)
async def test_malformed_token_requests_are_400_problems_with_an_oauth_error(
    client: httpx.AsyncClient, form: dict[str, str], oauth_error: str
) -> None:
    response = await _token(client, **form)

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["error"] == oauth_error
    assert response.json()["status"] == 400


async def test_token_request_sent_as_json_is_a_400_problem(
    client: httpx.AsyncClient, account: Any
) -> None:
    response = await client.post(
        "/v1/auth/token",
        json={"grant_type": "password", "username": account.email, "password": account.password},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_login_rehashes_a_password_hashed_with_old_parameters(
    app: FastAPI,
    client: httpx.AsyncClient,
    account: Any,
    login: Callable[[Any], Awaitable[dict[str, Any]]],
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(account.password)
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text("UPDATE auth.users SET password_hash = :hash WHERE email = :email"),
            {"hash": weak, "email": account.email},
        )

    await login(account)

    async with app.state.engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT password_hash FROM auth.users WHERE email = :email"),
            {"email": account.email},
        )
    assert stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)
    assert PasswordHasher().verify(stored, account.password)
