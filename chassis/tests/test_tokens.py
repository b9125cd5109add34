"""Access-token verification against a real JWKS endpoint: what passes and every way to fail."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chassis.clients import http_client
from chassis.tokens import InvalidTokenError, JwksVerifier, bearer_token
from fleetctl.tokens import TestTokenIssuer


def _verifier(issuer: TestTokenIssuer, client: httpx.AsyncClient, **kw: Any) -> JwksVerifier:
    return JwksVerifier(
        jwks_url=issuer.jwks_url,
        issuer=issuer.issuer,
        audience=issuer.audience,
        client=client,
        **kw,
    )


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_valid_token_yields_subject_and_roles(token_issuer: TestTokenIssuer) -> None:
    async with http_client() as client:
        principal = await _verifier(token_issuer, client).verify(
            token_issuer.issue(subject="user-1", roles=["admin"])
        )
    assert principal.subject == "user-1"
    assert principal.has_role("admin")


async def test_a_users_token_is_checked_once_until_it_expires(
    token_issuer: TestTokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]
    token = token_issuer.issue(subject="user-2", ttl=60)
    async with http_client() as client:
        verifier = JwksVerifier(
            jwks_url=token_issuer.jwks_url,
            issuer=token_issuer.issuer,
            audience=token_issuer.audience,
            client=client,
            clock=lambda: now[0],
        )
        checked: list[str] = []
        full_check = verifier.claims

        async def counting(token: str) -> dict[str, Any]:
            checked.append(token)
            return await full_check(token)

        monkeypatch.setattr(verifier, "claims", counting)
        subjects = [(await verifier.verify(token)).subject for _ in range(3)]
        assert subjects == ["user-2"] * 3
        assert checked == [token]
        # Past its expiry it is not remembered: it is checked again (and the check decides).
        now[0] += 120
        await verifier.verify(token)
        assert checked == [token, token]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda i: i.issue(ttl=-60), id="expired"),
        pytest.param(lambda i: i.issue(key=Ed25519PrivateKey.generate()), id="foreign-key"),
        pytest.param(lambda i: i.issue(aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda i: i.issue(iss="evil"), id="wrong-issuer"),
        pytest.param(lambda i: i.issue(typ="refresh"), id="not-an-access-token"),
        pytest.param(lambda i: i.issue(kid="unknown-kid"), id="unknown-kid"),
        pytest.param(lambda i: "not.a.jwt", id="malformed"),
        pytest.param(
            lambda i: (
                _b64({"alg": "none", "kid": i.active_kid})
                + "."
                + _b64(
                    {
                        "sub": "x",
                        "aud": "fleet",
                        "iss": "fleet-auth",
                        "exp": time.time() + 60,
                        "iat": time.time(),
                    }
                )
                + "."
            ),
            id="alg-none",
        ),
    ],
)
async def test_invalid_tokens_are_refused(token_issuer: TestTokenIssuer, forge: object) -> None:
    token = forge(token_issuer)  # type: ignore[operator]
    async with http_client() as client:
        with pytest.raises(InvalidTokenError):
            await _verifier(token_issuer, client).verify(token)


async def test_hs256_token_signed_with_the_public_key_is_refused(
    token_issuer: TestTokenIssuer,
) -> None:
    public_x = token_issuer.jwks()["keys"][0]["x"]
    claims = {
        "sub": "x",
        "aud": "fleet",
        "iss": "fleet-auth",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    token = jwt.encode(
        claims, public_x, algorithm="HS256", headers={"kid": token_issuer.active_kid}
    )
    async with http_client() as client:
        with pytest.raises(InvalidTokenError):
            await _verifier(token_issuer, client).verify(token)


async def test_rotated_key_is_fetched_on_unknown_kid_and_old_tokens_still_verify(
    token_issuer: TestTokenIssuer,
) -> None:
    async with http_client() as client:
        verifier = _verifier(token_issuer, client, min_refresh_interval=0.0)
        old_token = token_issuer.issue()
        await verifier.verify(old_token)
        token_issuer.rotate()
        new_token = token_issuer.issue()
        assert (await verifier.verify(new_token)).subject
        assert (await verifier.verify(old_token)).subject


async def test_unknown_kids_cannot_make_the_verifier_hammer_the_jwks_endpoint(
    token_issuer: TestTokenIssuer,
) -> None:
    async with http_client() as client:
        verifier = _verifier(token_issuer, client, min_refresh_interval=60.0)
        await verifier.verify(token_issuer.issue())
        fetched = token_issuer.jwks_requests
        for _ in range(20):
            with pytest.raises(InvalidTokenError):
                await verifier.verify(token_issuer.issue(kid="made-up"))
        assert token_issuer.jwks_requests == fetched


def test_bearer_header_parsing() -> None:
    assert bearer_token(None) is None
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    for bad in ("Basic abc", "Bearer", "Bearer   ", "abc"):
        with pytest.raises(InvalidTokenError):
            bearer_token(bad)
