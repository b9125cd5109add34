"""Verifying Fleet access tokens against the auth service's JWKS.

Used by the gateway (to authenticate every request) and by services (to re-check the claims they
rely on). Only asymmetric algorithms are accepted, so `alg: none` and HS256-with-the-public-key
forgeries are refused before any key is looked at. Keys are cached; a token with an unknown `kid`
triggers one refresh (at most every `min_refresh_interval` seconds, so garbage kids cannot turn the
verifier into a JWKS amplifier) which is how rotated keys are picked up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from jwt import PyJWK, PyJWKSet

from chassis.clients import http_client
from chassis.logging import get_logger
from chassis.problems import UnauthorizedError
from chassis.service_callers import ServiceTokenVerifier
from chassis.settings import WithTokenVerification
from chassis.verified_tokens import VerifiedTokens

ALLOWED_ALGORITHMS = ("EdDSA", "RS256")
# The `typ` claim of a user's access token (a service's is `chassis.service_tokens`').
ACCESS = "access"

log = get_logger(__name__)


class InvalidTokenError(UnauthorizedError):
    code = "invalid-token"
    title = "Invalid or expired token"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the verified access token says."""

    subject: str
    roles: frozenset[str]
    claims: dict[str, Any] = field(default_factory=dict)
    token: str = ""

    def has_role(self, role: str) -> bool:
        return role in self.roles


class JwksVerifier:
    def __init__(
        self,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        client: httpx.AsyncClient,
        cache_seconds: float = 300.0,
        min_refresh_interval: float = 5.0,
        leeway_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jwks_url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._client = client
        self._cache_seconds = cache_seconds
        self._min_refresh_interval = min_refresh_interval
        self._leeway = leeway_seconds
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        # Users' tokens checked once each, not on every request carrying them.
        self._verified: VerifiedTokens[Principal] = VerifiedTokens(clock=clock)

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if age < self._min_refresh_interval or (not force and age < self._cache_seconds):
                return
            try:
                response = await self._client.get(self._jwks_url)
                response.raise_for_status()
                jwk_set = PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                log.warning("jwks_refresh_failed", url=self._jwks_url, error=type(exc).__name__)
                if not self._keys:
                    raise InvalidTokenError(
                        "Signing keys are unavailable; try again shortly."
                    ) from exc
                return
            self._keys = {key.key_id: key for key in jwk_set.keys if key.key_id}
            self._fetched_at = time.monotonic()

    async def _key_for(self, kid: str) -> PyJWK:
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidTokenError("Token is signed with an unknown key.") from None

    async def verify(self, token: str) -> Principal:
        """The caller a user's access token names; a token verified before is not checked
        again until it expires (`chassis.verified_tokens`)."""
        principal = self._verified.get(token)
        if principal is None:
            claims = await self.claims(token)
            principal = principal_from(claims, token)
            self._verified.keep(token, principal, float(claims["exp"]))
        return principal

    async def claims(
        self, token: str, *, audience: str | None = None, typ: str = ACCESS
    ) -> dict[str, Any]:
        """The verified claims of a token of this `typ` for `audience` (default: the user
        tokens' audience); `chassis.service_callers` verifies service tokens through it."""
        alg, kid = unverified_header(token)
        key = await self._key_for(kid)
        if key.algorithm_name != alg:
            raise InvalidTokenError("Token algorithm does not match its key.")
        return decode_claims(
            token,
            key=key,
            alg=alg,
            issuer=self._issuer,
            audience=audience or self._audience,
            leeway=self._leeway,
            typ=typ,
        )


def unverified_header(token: str) -> tuple[str, str]:
    """`(alg, kid)` of a token, refusing anything but the asymmetric algorithms Fleet signs with
    (so `alg: none` and HS256-with-the-public-key never reach a key)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidTokenError("Token is malformed.") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALLOWED_ALGORITHMS or not isinstance(kid, str):
        raise InvalidTokenError("Token algorithm or key id is not accepted.")
    return alg, kid


def decode_claims(
    token: str,
    *,
    key: Any,
    alg: str,
    issuer: str,
    audience: str,
    leeway: float,
    typ: str = ACCESS,
) -> dict[str, Any]:
    """Verify signature and registered claims; the token must be of type `typ`: a user's
    access token (`access`) or a service's (`service`), never one for the other."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError("Token has expired.") from None
    except jwt.PyJWTError:
        raise InvalidTokenError("Token signature or claims are not valid.") from None
    if claims.get("typ", ACCESS) != typ:
        raise InvalidTokenError(f"Token is not a{'n' if typ == ACCESS else ''} {typ} token.")
    return claims


def principal_from(claims: dict[str, Any], token: str) -> Principal:
    roles = claims.get("roles", [])
    return Principal(
        subject=str(claims["sub"]),
        roles=frozenset(r for r in roles if isinstance(r, str))
        if isinstance(roles, list)
        else frozenset(),
        claims=claims,
        token=token,
    )


@asynccontextmanager
async def token_verification(app: FastAPI, settings: WithTokenVerification) -> AsyncIterator[None]:
    """Verification of the access tokens auth issues, for as long as a service's lifespan runs:
    `app.state.verifier` (users' tokens, read by `chassis.security`) and
    `app.state.service_verifier` (services' tokens for this service, read by
    `chassis.service_callers`) over a JWKS client of their own, closed on the way out."""
    client = http_client(connect_timeout=1.0, read_timeout=2.0)
    app.state.verifier = verifier = jwks_verifier(settings, client)

    async def service_claims(token: str, audience: str, typ: str) -> dict[str, Any]:
        return await verifier.claims(token, audience=audience, typ=typ)

    app.state.service_verifier = ServiceTokenVerifier(
        service_claims, audience=settings.service_name
    )
    try:
        yield
    finally:
        await client.aclose()


def jwks_verifier(
    settings: WithTokenVerification, client: httpx.AsyncClient, *, min_refresh_interval: float = 5.0
) -> JwksVerifier:
    return JwksVerifier(
        jwks_url=settings.auth_jwks_url,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        client=client,
        cache_seconds=settings.jwks_cache_seconds,
        min_refresh_interval=min_refresh_interval,
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None if the header is absent."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError("Authorization header must be `Bearer <token>`.")
    return token.strip()
