"""A caller's service tokens: fetched once per audience, refreshed before expiry in the background,
one fetch at a time, kept while auth is down, and sent again once after a callee refused one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from chassis.service_tokens import (
    SERVICE_REALM,
    SERVICE_TOKEN_HEADER,
    ServiceAuth,
    ServiceTokens,
    ServiceTokenUnavailableError,
)
from fleetctl.testing import eventually, serve_in_thread
from fleetctl.tokens import TestTokenIssuer

LIFETIME = TestTokenIssuer.service_ttl


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _tokens(
    issuer: TestTokenIssuer, client: httpx.AsyncClient, clock: Clock, **kw: float
) -> ServiceTokens:
    return ServiceTokens(
        client=client,
        token_url=issuer.token_url,
        client_id="orders",
        client_secret="secret",
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )


async def test_a_token_is_fetched_once_and_reused_until_its_refresh_is_due(
    token_issuer: TestTokenIssuer,
) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        tokens = _tokens(token_issuer, client, clock)
        first = await tokens.token("catalog")
        clock.now += LIFETIME * 0.79
        assert await tokens.token("catalog") == first
        assert token_issuer.token_requests == 1
        assert await tokens.token("worker") != first  # one token per audience
        assert token_issuer.token_requests == 2


async def test_past_eighty_percent_the_current_token_serves_while_a_fresh_one_is_fetched(
    token_issuer: TestTokenIssuer,
) -> None:
    clock = Clock()
    async with httpx.AsyncClient() as client:
        tokens = _tokens(token_issuer, client, clock)
        first = await tokens.token("catalog")
        clock.now += LIFETIME * 0.81

        assert await tokens.token("catalog") == first  # not waiting for auth
        await eventually(lambda: tokens.fetched == 2)
        assert await tokens.token("catalog") != first
        assert token_issuer.token_requests == 2


async def test_concurrent_callers_without_a_token_share_one_fetch(
    token_issuer: TestTokenIssuer,
) -> None:
    async with httpx.AsyncClient() as client:
        tokens = _tokens(token_issuer, client, Clock())
        got = await asyncio.gather(*(tokens.token("catalog") for _ in range(20)))
    assert len(set(got)) == 1
    assert token_issuer.token_requests == 1


async def test_auth_down_breaks_nothing_while_the_token_is_valid_and_fails_fast_after() -> None:
    issuer, clock = TestTokenIssuer(), Clock()
    async with httpx.AsyncClient() as client:
        tokens = _tokens(issuer, client, clock, timeout=1.0, min_refresh_seconds=5.0)
        first = await tokens.token("catalog")
        issuer.close()  # auth is down from here on

        clock.now += LIFETIME * 0.9
        assert await tokens.token("catalog") == first
        await eventually(lambda: "catalog" not in tokens._fetches)  # the refresh failed
        assert await tokens.token("catalog") == first

        clock.now += LIFETIME * 0.2  # expired
        with pytest.raises(ServiceTokenUnavailableError):
            await tokens.token("catalog")


def _refusing_callee(refusals: int, seen: list[str]) -> FastAPI:
    """A callee that refuses the first `refusals` service tokens it sees (say its keys rotated)."""
    app = FastAPI()

    @app.post("/work")
    async def work(request: Request) -> JSONResponse:
        seen.append(request.headers.get(SERVICE_TOKEN_HEADER, ""))
        body = (await request.body()).decode()
        if len(seen) <= refusals:
            return JSONResponse(
                {"status": 401},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{SERVICE_REALM}"'},
            )
        return JSONResponse({"body": body})

    return app


async def test_a_refused_token_is_replaced_and_the_call_sent_once_more(
    token_issuer: TestTokenIssuer,
) -> None:
    clock, seen = Clock(), list[str]()
    with serve_in_thread(_refusing_callee(1, seen)) as url:
        async with httpx.AsyncClient() as token_client:
            tokens = _tokens(token_issuer, token_client, clock, min_refresh_seconds=5.0)
            await tokens.token("catalog")
            clock.now += 10  # older than min_refresh_seconds
            auth = ServiceAuth(tokens, "catalog")
            async with httpx.AsyncClient(base_url=url, auth=auth) as client:
                response = await client.post("/work", content=b"payload")
    assert response.status_code == 200
    assert response.json() == {"body": "payload"}  # the body was sent again
    assert len(seen) == 2
    assert seen[0] != seen[1]
    assert token_issuer.token_requests == 2


async def test_a_token_refused_right_after_it_was_fetched_is_not_retried(
    token_issuer: TestTokenIssuer,
) -> None:
    seen: list[str] = []
    with serve_in_thread(_refusing_callee(10, seen)) as url:
        async with httpx.AsyncClient() as token_client:
            tokens = _tokens(token_issuer, token_client, Clock(), min_refresh_seconds=5.0)
            auth = ServiceAuth(tokens, "catalog")
            async with httpx.AsyncClient(base_url=url, auth=auth) as client:
                response = await client.post("/work")
    assert response.status_code == 401
    assert len(seen) == 1
    assert token_issuer.token_requests == 1
