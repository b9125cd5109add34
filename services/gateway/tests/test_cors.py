"""CORS at the gateway: preflights answered at the edge (never forwarded, no token, no rate budget),
allowed origins echoed on every answer including the gateway's own problems, other origins never
granted, and the settings refusing what a browser could never match or must never be allowed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from fleetctl.testing import assert_problem
from gateway.cors import ALLOWED_HEADERS, EXPOSED_HEADERS
from gateway.settings import GatewaySettings

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

APP = "https://app.fleet.example.com"
LOCAL_UI = "http://localhost:3000"
CORS = {"cors_allowed_origins": f"{APP},{LOCAL_UI}"}


def _preflight(origin: str, method: str = "POST", headers: str | None = None) -> dict[str, str]:
    request = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        request["Access-Control-Request-Headers"] = headers
    return request


def _names(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


def _assert_allowed(response: httpx.Response, origin: str) -> None:
    assert response.headers["access-control-allow-origin"] == origin
    assert "origin" in _names(response.headers["vary"])
    assert {"retry-after", "ratelimit-remaining", "x-request-id", "location", "etag"} <= _names(
        response.headers["access-control-expose-headers"]
    )


async def test_preflight_from_an_allowed_origin_is_answered_at_the_gateway(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any]
) -> None:
    request_id = uuid.uuid4().hex
    async with gateway_factory(**CORS, cors_max_age_seconds=900) as gateway:
        response = await gateway.options(
            "/v1/orders",  # a route that needs a caller: the preflight needs none
            headers={
                **_preflight(APP, "POST", "authorization, content-type, idempotency-key"),
                "X-Request-ID": request_id,
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    assert {"get", "post", "patch", "delete"} <= _names(
        response.headers["access-control-allow-methods"]
    )
    assert {h.lower() for h in ALLOWED_HEADERS} | {"content-type"} <= _names(
        response.headers["access-control-allow-headers"]
    )
    assert response.headers["access-control-max-age"] == "900"
    assert "origin" in _names(response.headers["vary"])
    assert "access-control-allow-credentials" not in response.headers
    assert all(request_id not in upstream.request_ids() for upstream in upstreams.values())


async def test_preflights_spend_no_rate_budget(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory(**CORS, rate_limit_default="2/minute") as gateway:
        preflights = [
            await gateway.options("/v1/products", headers=_preflight(APP, "GET", "x-request-id"))
            for _ in range(5)
        ]
        first = await gateway.get("/v1/products", headers={"Origin": APP})
    assert [r.status_code for r in preflights] == [200] * 5
    assert first.status_code == 200
    assert first.headers["ratelimit-remaining"] == "1"


@pytest.mark.parametrize(
    "preflight",
    [
        _preflight("https://evil.example.com"),
        _preflight("https://app.fleet.example.com.evil.example.com"),
        _preflight("http://app.fleet.example.com"),  # another scheme is another origin
        _preflight(APP, "POST", "authorization, x-debug"),  # a header the API does not take
        _preflight(APP, "TRACE"),
    ],
    ids=["other-site", "suffix", "other-scheme", "unknown-header", "unknown-method"],
)
async def test_a_refused_preflight_grants_nothing_and_is_not_forwarded(
    gateway_factory: GatewayFactory, upstreams: dict[str, Any], preflight: dict[str, str]
) -> None:
    request_id = uuid.uuid4().hex
    async with gateway_factory(**CORS) as gateway:
        response = await gateway.options(
            "/v1/products", headers={**preflight, "X-Request-ID": request_id}
        )
    assert response.status_code == 400
    if preflight["Origin"] != APP:
        assert "access-control-allow-origin" not in response.headers
    assert all(request_id not in upstream.request_ids() for upstream in upstreams.values())


async def test_an_allowed_origin_is_echoed_with_vary_and_the_exposed_headers(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(**CORS) as gateway:
        app = await gateway.get("/v1/products", headers={"Origin": APP})
        local = await gateway.get("/v1/products", headers={"Origin": LOCAL_UI})
    assert app.status_code == local.status_code == 200
    _assert_allowed(app, APP)
    _assert_allowed(local, LOCAL_UI)
    assert "access-control-allow-credentials" not in app.headers
    assert set(EXPOSED_HEADERS) >= {"RateLimit-Limit", "RateLimit-Reset", "Idempotent-Replayed"}


async def test_another_origin_gets_the_answer_but_no_grant(gateway_factory: GatewayFactory) -> None:
    # The server cannot stop a browser sending it; the browser withholds the answer from the page.
    async with gateway_factory(**CORS) as gateway:
        response = await gateway.get("/v1/products", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in _names(response.headers["vary"])


async def test_answers_without_origin_still_vary_on_it(gateway_factory: GatewayFactory) -> None:
    # A shared cache must not serve a browser the copy it stored for a client without `Origin`.
    async with gateway_factory(**CORS) as gateway:
        response = await gateway.get("/v1/products")
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in _names(response.headers["vary"])


async def test_without_origins_there_is_no_cors(gateway_factory: GatewayFactory) -> None:
    async with gateway_factory() as gateway:
        response = await gateway.get("/v1/products", headers={"Origin": APP})
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]
    assert "vary" not in response.headers


async def test_the_gateways_401_and_429_problems_carry_the_grant(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(**CORS, rate_limit_default="1/minute") as gateway:
        unauthorized = await gateway.get("/v1/orders", headers={"Origin": APP})
        limited = await gateway.get("/v1/products", headers={"Origin": APP})
    assert_problem(unauthorized, 401, "token-required")
    _assert_allowed(unauthorized, APP)
    assert "www-authenticate" in _names(unauthorized.headers["access-control-expose-headers"])
    assert_problem(limited, 429, "rate-limited")
    _assert_allowed(limited, APP)


async def test_the_chassis_overload_503_carries_the_grant(gateway_factory: GatewayFactory) -> None:
    # Refused by the chassis's own middleware before any route: CORS must wrap it too.
    async with gateway_factory(**CORS, max_in_flight_requests=1) as gateway:
        slow = asyncio.create_task(gateway.get("/v1/products", params={"sleep": "0.5"}))
        await asyncio.sleep(0.2)
        shed = await gateway.get("/v1/products", headers={"Origin": APP})
        await slow
    assert_problem(shed, 503, "overloaded")
    _assert_allowed(shed, APP)


async def test_credentials_are_allowed_only_when_configured(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(**CORS, cors_allow_credentials=True) as gateway:
        preflight = await gateway.options("/v1/orders", headers=_preflight(APP))
        simple = await gateway.get("/v1/products", headers={"Origin": APP})
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert simple.headers["access-control-allow-credentials"] == "true"
    _assert_allowed(simple, APP)


async def test_any_origin_without_credentials_is_a_plain_star(
    gateway_factory: GatewayFactory,
) -> None:
    async with gateway_factory(cors_allowed_origins="*") as gateway:
        response = await gateway.get("/v1/products", headers={"Origin": "https://any.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


# --- settings ----------------------------------------------------------------------------------


def test_origins_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CORS_ALLOWED_ORIGINS",
        " https://app.example.com, http://127.0.0.1:3000,https://app.example.com",
    )
    settings = GatewaySettings()
    assert settings.cors_allowed_origins == ("https://app.example.com", "http://127.0.0.1:3000")
    assert settings.model_dump()["cors_allowed_origins"] == (
        "https://app.example.com,http://127.0.0.1:3000"
    )
    assert GatewaySettings(cors_allowed_origins="").cors_allowed_origins == ()
    assert GatewaySettings(cors_allowed_origins="http://[::1]:3000").cors_allowed_origins == (
        "http://[::1]:3000",
    )


def test_any_origin_with_credentials_stops_the_gateway() -> None:
    with pytest.raises(ValidationError, match="CORS_ALLOW_CREDENTIALS"):
        GatewaySettings(cors_allowed_origins="*", cors_allow_credentials=True)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("https://app.example.com/", "trailing slash"),
        ("https://app.example.com/v1", "trailing slash"),
        ("app.example.com", "expected"),
        ("ftp://app.example.com", "expected"),
        ("https://App.Example.com", "lower case"),
        ("https://app.example.com:443", "default port"),
        ("http://localhost:99999", "default port"),
        ("https://*.example.com", "expected"),
        ("https://app.example.com;https://admin.example.com", "expected"),
        ("*,https://app.example.com", "cannot be listed with others"),
        ("null", "expected"),
    ],
)
def test_an_origin_no_browser_sends_stops_the_gateway(value: str, reason: str) -> None:
    with pytest.raises(ValidationError, match="cors_allowed_origins") as refused:
        GatewaySettings(cors_allowed_origins=value)
    assert reason in str(refused.value)
