"""A route that declares its callers refuses anything but a valid service token of one of them."""

from __future__ import annotations

import timeit
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from chassis.http import RequestContextMiddleware
from chassis.problems import install_problem_handlers
from chassis.service_callers import ServiceCallers, ServiceTokenVerifier
from chassis.tokens import JwksVerifier
from fleetctl.testing import assert_problem
from fleetctl.tokens import TestTokenIssuer

HEADER = "Fleet-Service-Authorization"


@pytest.fixture
async def catalog(token_issuer: TestTokenIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """A service named catalog with one route only orders may call."""
    router = APIRouter(dependencies=[ServiceCallers("orders")])

    @router.get("/internal/prices")
    async def prices() -> dict[str, str]:
        return {"ok": "yes"}

    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=1024, max_in_flight=10)
    app.include_router(router)
    async with httpx.AsyncClient() as jwks_client:
        verifier = JwksVerifier(
            jwks_url=token_issuer.jwks_url,
            issuer=token_issuer.issuer,
            audience=token_issuer.audience,
            client=jwks_client,
        )

        async def claims(token: str, audience: str, typ: str) -> dict[str, Any]:
            return await verifier.claims(token, audience=audience, typ=typ)

        app.state.service_verifier = ServiceTokenVerifier(claims, audience="catalog")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
            yield client


async def test_the_allowed_callers_token_for_this_service_passes(
    catalog: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.issue_service(caller="orders", audience="catalog")
    response = await catalog.get("/internal/prices", headers={HEADER: f"Bearer {token}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda issuer: {}, id="no-token"),
        pytest.param(lambda issuer: {HEADER: "Basic b3JkZXJzOng="}, id="not-bearer"),
        pytest.param(
            lambda issuer: {
                HEADER: f"Bearer {issuer.issue_service(caller='orders', audience='worker')}"
            },
            id="wrong-audience",
        ),
        pytest.param(
            lambda issuer: {
                HEADER: "Bearer "
                + issuer.issue_service(caller="orders", audience="catalog", ttl=-60)
            },
            id="expired",
        ),
        pytest.param(
            lambda issuer: {HEADER: f"Bearer {issuer.issue(subject='orders', aud='catalog')}"},
            id="user-token",
        ),
        pytest.param(
            lambda issuer: {
                "Authorization": "Bearer "
                + issuer.issue_service(caller="orders", audience="catalog")
            },
            id="in-authorization",
        ),
    ],
)
async def test_no_valid_service_token_for_this_service_is_a_401_in_the_service_realm(
    catalog: httpx.AsyncClient, token_issuer: TestTokenIssuer, headers: Any
) -> None:
    response = await catalog.get("/internal/prices", headers=headers(token_issuer))
    assert_problem(response, 401, "invalid-service-token")
    assert 'realm="fleet-service"' in response.headers["www-authenticate"]


async def test_a_service_the_route_does_not_serve_gets_403(
    catalog: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.issue_service(caller="gateway", audience="catalog")
    response = await catalog.get("/internal/prices", headers={HEADER: f"Bearer {token}"})
    assert_problem(response, 403, "caller-not-allowed")


async def test_a_verified_token_is_remembered_until_it_expires(
    token_issuer: TestTokenIssuer,
) -> None:
    calls: list[str] = []

    async def claims(token: str, audience: str, typ: str) -> dict[str, Any]:
        calls.append(token)
        return {"sub": "orders", "exp": 2000.0}

    clock = [1000.0]
    verifier = ServiceTokenVerifier(claims, audience="catalog", clock=lambda: clock[0])
    for _ in range(3):
        assert (await verifier.verify("t")).name == "orders"
    assert calls == ["t"]
    clock[0] = 2000.0
    await verifier.verify("t")
    assert calls == ["t", "t"]


async def test_verifying_a_service_token_costs_microseconds(
    token_issuer: TestTokenIssuer,
) -> None:
    """The per-request cost, printed for the record (pytest -s): a full signature check, and a
    remembered token."""
    async with httpx.AsyncClient() as jwks_client:
        verifier = JwksVerifier(
            jwks_url=token_issuer.jwks_url,
            issuer=token_issuer.issuer,
            audience=token_issuer.audience,
            client=jwks_client,
        )
        token = token_issuer.issue_service(caller="orders", audience="catalog")

        async def claims(token: str, audience: str, typ: str) -> dict[str, Any]:
            return await verifier.claims(token, audience=audience, typ=typ)

        remembering = ServiceTokenVerifier(claims, audience="catalog")
        await remembering.verify(token)  # keys fetched, token remembered
        runs = 2000
        full = await _mean_seconds(
            lambda: verifier.claims(token, audience="catalog", typ="service"), runs
        )
        cached = await _mean_seconds(lambda: remembering.verify(token), runs)
    print(f"\nservice token verify: full {full * 1e6:.1f} us, remembered {cached * 1e6:.2f} us")
    assert cached < full


async def _mean_seconds(call: Any, runs: int) -> float:
    start = timeit.default_timer()
    for _ in range(runs):
        await call()
    return (timeit.default_timer() - start) / runs
