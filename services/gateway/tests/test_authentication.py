"""Bearer tokens at the gateway: verified against the JWKS, forwarded unchanged when valid."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleetctl.tokens import TestTokenIssuer


def _assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


def _unsigned_token(issuer: TestTokenIssuer) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": "mallory",
        "iat": now,
        "exp": now + 600,
        "roles": ["admin"],
        "typ": "access",
    }
    return jwt.encode(claims, "", algorithm="none", headers={"kid": issuer.active_kid})


async def test_valid_token_reaches_upstream_unchanged(
    gateway: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    token = token_issuer.issue(subject="alice", roles=["customer"])
    response = await gateway.get("/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["headers"]["authorization"] == f"Bearer {token}"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(_unsigned_token, id="alg-none"),
        pytest.param(lambda i: i.issue(key=Ed25519PrivateKey.generate()), id="forged-known-kid"),
        pytest.param(lambda i: i.issue(ttl=-60), id="expired"),
        pytest.param(lambda i: "not.a.jwt", id="malformed"),
        pytest.param(lambda i: i.issue(aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda i: i.issue(iss="someone-else"), id="wrong-issuer"),
        pytest.param(lambda i: i.issue(kid="no-such-kid"), id="unknown-kid"),
        pytest.param(lambda i: i.issue(typ="refresh"), id="not-an-access-token"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/orders", "/v1/products"])
async def test_invalid_token_is_401_on_every_route_and_never_forwarded(
    gateway: httpx.AsyncClient,
    token_issuer: TestTokenIssuer,
    upstreams: dict[str, Any],
    make_token: Callable[[TestTokenIssuer], str],
    path: str,
) -> None:
    request_id = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {make_token(token_issuer)}", "X-Request-ID": request_id}
    _assert_401(await gateway.get(path, headers=headers))
    assert all(request_id not in echo.request_ids() for echo in upstreams.values())


@pytest.mark.parametrize("authorization", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer  "])
async def test_authorization_that_is_not_a_bearer_token_is_401(
    gateway: httpx.AsyncClient, authorization: str
) -> None:
    _assert_401(await gateway.get("/v1/products", headers={"Authorization": authorization}))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/auth/me"),
        ("POST", "/v1/auth/logout"),
        ("GET", "/v1/orders"),
        ("POST", "/v1/orders"),
        ("GET", "/v1/orders/5e0c"),
        ("POST", "/v1/webhooks/subscriptions"),
        ("POST", "/v1/products"),
        ("PATCH", "/v1/products/5e0c"),
    ],
)
async def test_protected_route_without_token_is_401(
    gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await gateway.request(method, path)
    _assert_401(response)
    assert response.json()["type"].endswith("/token-required")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/auth/register"),
        ("POST", "/v1/auth/token"),
        ("GET", "/v1/auth/jwks"),
        ("GET", "/v1/products"),
        ("GET", "/v1/products/5e0c"),
    ],
)
async def test_public_route_without_token_passes(
    gateway: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await gateway.request(method, path)
    assert response.status_code == 200
    assert "authorization" not in response.json()["headers"]


async def test_rotated_key_is_picked_up_and_old_key_still_works(
    gateway: httpx.AsyncClient, token_issuer: TestTokenIssuer
) -> None:
    old = token_issuer.issue(subject="alice")
    assert (await gateway.get("/v1/orders", headers={"Authorization": f"Bearer {old}"})).is_success
    fetches = token_issuer.jwks_requests

    token_issuer.rotate()
    new = token_issuer.issue(subject="alice")
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert (await gateway.get("/v1/orders", headers={"Authorization": f"Bearer {new}"})).is_success
    assert token_issuer.jwks_requests == fetches + 1
    assert (await gateway.get("/v1/orders", headers={"Authorization": f"Bearer {old}"})).is_success
    assert token_issuer.jwks_requests == fetches + 1
