from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import text

from auth.keyring import KeyRing
from chassis.tokens import JwksVerifier

pytestmark = pytest.mark.integration

Login = Callable[[Any], Awaitable[dict[str, Any]]]
Header = Callable[[str], dict[str, str]]


def _claims(subject: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "fleet-auth",
        "aud": "fleet",
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "roles": [],
        "typ": "access",
    }
    return {**claims, **overrides}


async def test_me_without_a_token_is_a_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/me")

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_me_refuses_a_token_forged_with_a_foreign_key(
    client: httpx.AsyncClient, account: Any, keys_dir: Path, auth_header: Header
) -> None:
    active_kid = KeyRing.load(keys_dir).active.kid
    forged = jwt.encode(
        _claims(account.id, roles=["admin"]),
        Ed25519PrivateKey.generate(),
        algorithm="EdDSA",
        headers={"kid": active_kid},
    )

    response = await client.get("/v1/auth/me", headers=auth_header(forged))

    assert response.status_code == 401


async def test_me_refuses_an_expired_token(
    client: httpx.AsyncClient, account: Any, keys_dir: Path, auth_header: Header
) -> None:
    now = int(time.time())
    expired = KeyRing.load(keys_dir).sign(
        _claims(account.id, iat=now - 1000, nbf=now - 1000, exp=now - 60)
    )

    response = await client.get("/v1/auth/me", headers=auth_header(expired))

    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_me_refuses_a_valid_token_of_a_deleted_user(
    app: FastAPI, client: httpx.AsyncClient, account: Any, login: Login, auth_header: Header
) -> None:
    tokens = await login(account)
    async with app.state.engine.begin() as conn:
        await conn.execute(text("DELETE FROM auth.users WHERE id = :id"), {"id": account.id})

    me = await client.get("/v1/auth/me", headers=auth_header(tokens["access_token"]))
    refreshed = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )

    assert me.status_code == 401
    assert refreshed.status_code == 401


async def test_me_refuses_a_token_whose_subject_is_not_a_user_id(
    client: httpx.AsyncClient, keys_dir: Path, auth_header: Header
) -> None:
    token = KeyRing.load(keys_dir).sign(_claims("not-a-uuid"))

    response = await client.get("/v1/auth/me", headers=auth_header(token))

    assert response.status_code == 401


async def test_jwks_publishes_the_public_keys_for_caching(
    client: httpx.AsyncClient, keys_dir: Path
) -> None:
    response = await client.get("/v1/auth/jwks")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    (key,) = response.json()["keys"]
    assert key["kid"] == KeyRing.load(keys_dir).active.kid
    assert {key["kty"], key["crv"], key["alg"], key["use"]} == {"OKP", "Ed25519", "EdDSA", "sig"}
    assert key["x"]
    assert "d" not in key


async def test_issued_access_tokens_pass_the_chassis_jwks_verifier(
    client: httpx.AsyncClient, account: Any, login: Login
) -> None:
    """What the gateway and the other services run: fetch the JWKS over HTTP, verify claims."""
    tokens = await login(account)
    verifier = JwksVerifier(
        jwks_url="http://test/v1/auth/jwks", issuer="fleet-auth", audience="fleet", client=client
    )

    principal = await verifier.verify(tokens["access_token"])

    assert principal.subject == account.id
    assert principal.roles == frozenset()
    assert principal.claims["typ"] == "access"
    assert {"iat", "nbf", "exp", "jti"} <= principal.claims.keys()
    assert principal.claims["exp"] - principal.claims["iat"] == 900


async def test_readyz_reports_postgres_the_broker_and_its_loops(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {
        "postgres": "ok",
        "rabbitmq": "ok",
        "loop:outbox_relay": "ok",
        "loop:retention": "ok",
    }
