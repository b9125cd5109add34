from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest

from fleetctl.tokens import TestTokenIssuer
from gateway.main import build_app
from gateway.settings import GatewaySettings
from gateway_upstreams import EchoUpstream, serve_in_thread

UPSTREAM_NAMES = ("auth", "catalog", "orders", "worker")

GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, EchoUpstream]]:
    """One real echo server per upstream service, shared by the whole session."""
    echoes = {name: EchoUpstream(name) for name in UPSTREAM_NAMES}
    with ExitStack() as stack:
        for echo in echoes.values():
            echo.url = stack.enter_context(serve_in_thread(echo.app()))
        yield echoes


@pytest.fixture
def gateway_settings(
    upstreams: dict[str, EchoUpstream], token_issuer: TestTokenIssuer, redis_prefix: str
) -> Callable[..., GatewaySettings]:
    def make(**overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "fleet_env": "test",
            **{f"{name}_url": echo.url for name, echo in upstreams.items()},
            "auth_jwks_url": token_issuer.jwks_url,
            "jwt_issuer": token_issuer.issuer,
            "jwt_audience": token_issuer.audience,
            "jwks_min_refresh_seconds": 0,
            "redis_key_prefix": redis_prefix,
            **overrides,
        }
        return GatewaySettings(**values)

    return make


@pytest.fixture
def gateway_factory(gateway_settings: Callable[..., GatewaySettings]) -> GatewayFactory:
    """`async with gateway_factory(**setting_overrides) as client:` a running gateway app."""

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = build_app(gateway_settings(**overrides))
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://gateway.test"
        ) as client:
            yield client

    return run


@pytest.fixture
async def gateway(gateway_factory: GatewayFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_factory() as client:
        yield client


@pytest.fixture
def bearer(token_issuer: TestTokenIssuer) -> Callable[..., dict[str, str]]:
    def make(**claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_issuer.issue(**claims)}"}

    return make
