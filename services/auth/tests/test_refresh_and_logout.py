from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

pytestmark = pytest.mark.integration

Login = Callable[[Any], Awaitable[dict[str, Any]]]
Header = Callable[[str], dict[str, str]]


async def _refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


async def _logout(
    client: httpx.AsyncClient, access_token: str, refresh_token: str
) -> httpx.Response:
    return await client.post(
        "/v1/auth/logout",
        json={"refresh_token": refresh_token},
        headers={"Authorization": f"Bearer {access_token}"},
    )


async def test_refresh_token_issues_a_new_pair_once(
    client: httpx.AsyncClient, account: Any, login: Login, auth_header: Header
) -> None:
    tokens = await login(account)

    refreshed = await _refresh(client, tokens["refresh_token"])

    assert refreshed.status_code == 200
    assert refreshed.headers["cache-control"] == "no-store"
    body = refreshed.json()
    assert body["refresh_token"] != tokens["refresh_token"]
    me = await client.get("/v1/auth/me", headers=auth_header(body["access_token"]))
    assert me.json()["id"] == account.id


async def test_reusing_a_refresh_token_is_refused_and_revokes_its_whole_family(
    client: httpx.AsyncClient, account: Any, login: Login
) -> None:
    tokens = await login(account)
    successor = (await _refresh(client, tokens["refresh_token"])).json()["refresh_token"]

    replay = await _refresh(client, tokens["refresh_token"])
    after_replay = await _refresh(client, successor)

    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_grant"
    assert after_replay.status_code == 401
    assert after_replay.json()["error"] == "invalid_grant"


async def test_reuse_revokes_only_its_own_family(
    client: httpx.AsyncClient, account: Any, login: Login
) -> None:
    other_session = await login(account)
    tokens = await login(account)
    await _refresh(client, tokens["refresh_token"])

    await _refresh(client, tokens["refresh_token"])

    assert (await _refresh(client, other_session["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_let_at_most_one_succeed(
    client: httpx.AsyncClient, account: Any, login: Login
) -> None:
    tokens = await login(account)

    responses = await asyncio.gather(*(_refresh(client, tokens["refresh_token"]) for _ in range(4)))

    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401]


async def test_unknown_and_expired_refresh_tokens_are_refused(
    app: FastAPI, client: httpx.AsyncClient, account: Any, login: Login
) -> None:
    tokens = await login(account)
    digest = hashlib.sha256(tokens["refresh_token"].encode()).hexdigest()
    async with app.state.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE auth.refresh_tokens SET expires_at = now() - interval '1 second' "
                "WHERE token_hash = :digest"
            ),
            {"digest": digest},
        )

    expired = await _refresh(client, tokens["refresh_token"])
    unknown = await _refresh(client, "never-issued")

    assert expired.status_code == 401
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "invalid_grant"


async def test_logout_revokes_the_refresh_token_family(
    client: httpx.AsyncClient, account: Any, login: Login
) -> None:
    tokens = await login(account)
    successor = (await _refresh(client, tokens["refresh_token"])).json()

    response = await _logout(client, successor["access_token"], successor["refresh_token"])

    assert response.status_code == 204
    assert response.content == b""
    assert (await _refresh(client, successor["refresh_token"])).status_code == 401


async def test_logout_is_idempotent_and_accepts_unknown_tokens(
    client: httpx.AsyncClient, account: Any, login: Login
) -> None:
    tokens = await login(account)

    first = await _logout(client, tokens["access_token"], tokens["refresh_token"])
    again = await _logout(client, tokens["access_token"], tokens["refresh_token"])
    unknown = await _logout(client, tokens["access_token"], "never-issued")

    assert [first.status_code, again.status_code, unknown.status_code] == [204, 204, 204]


async def test_logout_with_someone_elses_refresh_token_does_not_revoke_it(
    client: httpx.AsyncClient, register: Callable[[], Awaitable[Any]], login: Login
) -> None:
    victim = await login(await register())
    caller = await login(await register())

    response = await _logout(client, caller["access_token"], victim["refresh_token"])

    assert response.status_code == 204
    assert (await _refresh(client, victim["refresh_token"])).status_code == 200


async def test_logout_needs_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/logout", json={"refresh_token": "anything"})

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


async def test_logout_refuses_extra_fields(
    client: httpx.AsyncClient, account: Any, login: Login, auth_header: Header
) -> None:
    tokens = await login(account)

    response = await client.post(
        "/v1/auth/logout",
        json={"refresh_token": tokens["refresh_token"], "all": True},
        headers=auth_header(tokens["access_token"]),
    )

    assert response.status_code == 422
