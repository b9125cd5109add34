"""A client's identity journey through the gateway: register, log in, refresh, log out."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from e2e_support import RunningFleet, bearer, register_and_login, unique_email

pytestmark = pytest.mark.e2e
PROBLEM = "application/problem+json"


async def test_register_login_me_refresh_once_and_reuse_is_refused(
    gateway: httpx.AsyncClient,
) -> None:
    session = await register_and_login(gateway)
    assert session["token_type"] == "bearer"

    me = await gateway.get("/v1/auth/me", headers=bearer(session["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == session["email"]
    assert me.json()["roles"] == []

    refreshed = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
    )
    assert refreshed.status_code == 200
    new_refresh = refreshed.json()["refresh_token"]
    assert new_refresh != session["refresh_token"]
    assert (
        await gateway.get("/v1/auth/me", headers=bearer(refreshed.json()["access_token"]))
    ).status_code == 200

    reused = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
    )
    assert reused.status_code == 401
    assert reused.headers["content-type"] == PROBLEM
    # Reuse revoked the whole family, including the token issued by the legitimate refresh.
    stolen_family = await gateway.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": new_refresh}
    )
    assert stolen_family.status_code == 401


async def test_duplicate_registration_is_409_problem(gateway: httpx.AsyncClient) -> None:
    email = unique_email()
    first = await gateway.post(
        "/v1/auth/register", json={"email": email, "password": "pass-word-1"}
    )
    assert first.status_code == 201
    again = await gateway.post(
        "/v1/auth/register", json={"email": email.upper(), "password": "pass-word-2"}
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM


async def test_wrong_password_and_unknown_user_are_the_same_401(
    gateway: httpx.AsyncClient,
) -> None:
    session = await register_and_login(gateway)
    wrong = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": session["email"], "password": "nope-nope"},
    )
    unknown = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": unique_email(), "password": "nope-nope"},
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = ("request_id", "instance")
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }


async def test_logout_revokes_the_refresh_token(gateway: httpx.AsyncClient) -> None:
    session = await register_and_login(gateway)
    out = await gateway.post(
        "/v1/auth/logout",
        json={"refresh_token": session["refresh_token"]},
        headers=bearer(session["access_token"]),
    )
    assert out.status_code == 204
    after = await gateway.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": session["refresh_token"]},
    )
    assert after.status_code == 401


def _real_signing_key(fleet: RunningFleet) -> tuple[str, Ed25519PrivateKey]:
    pem = sorted(fleet.stack.keys_dir.glob("*.pem"))[-1]
    key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return pem.stem, key


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "fleet-auth",
        "aud": "fleet",
        "sub": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": ["admin"],
        "typ": "access",
        **overrides,
    }


async def test_forged_expired_and_malformed_tokens_are_401_problems(
    gateway: httpx.AsyncClient, running_fleet: RunningFleet
) -> None:
    kid, real_key = _real_signing_key(running_fleet)
    now = int(time.time())
    forged = jwt.encode(
        _claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    expired = jwt.encode(
        _claims(iat=now - 3600, nbf=now - 3600, exp=now - 1800),
        real_key,
        algorithm="EdDSA",
        headers={"kid": kid},
    )
    unsigned = jwt.encode(_claims(), None, algorithm="none", headers={"kid": kid})  # type: ignore[arg-type]
    headers = [f"Bearer {t}" for t in (forged, expired, unsigned, "garbage.token.value")]
    for authorization in [*headers, "Basic YWRtaW46YWRtaW4=", "Bearer"]:
        response = await gateway.get("/v1/auth/me", headers={"Authorization": authorization})
        assert response.status_code == 401, authorization
        assert response.headers["content-type"] == PROBLEM
        assert "request_id" in response.json()
    # The same real key with valid claims is accepted, so the refusals above are about the token.
    good = jwt.encode(_claims(), real_key, algorithm="EdDSA", headers={"kid": kid})
    created = await gateway.post(
        "/v1/products",
        headers=bearer(good),
        json={
            "sku": f"E2E-{uuid.uuid4().hex[:8]}".upper(),
            "name": "Signed",
            "price_cents": 1,
            "stock": 1,
        },
    )
    assert created.status_code == 201, created.text


async def test_jwks_is_public(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/v1/auth/jwks")
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    assert all({"kid", "kty", "alg"} <= key.keys() for key in keys)
    assert all("d" not in key for key in keys)  # never a private part
