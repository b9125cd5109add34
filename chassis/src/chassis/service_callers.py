"""Which service is calling: routes declare the callers they serve, `ServiceCallers(...)`.

The caller's token (`chassis.service_tokens`) comes in `Fleet-Service-Authorization: Bearer`;
`Authorization` stays the end user's. A route that declares its callers refuses a request with
no such token, or one that is not valid for this service (wrong audience, expired, forged, a
user's access token), with 401 and the service realm in `WWW-Authenticate` (so the caller knows
to fetch a new token, not to blame its user), and a valid token of a service the route does not
serve with 403.

Verification is a signature check against the JWKS key already held (an Ed25519 verify: tens of
microseconds). A caller sends the same token for minutes, so verified tokens are remembered by
their exact string until they expire, and a repeated token costs a dictionary lookup.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from chassis.problems import ForbiddenError, UnauthorizedError
from chassis.service_tokens import SERVICE_REALM, SERVICE_TOKEN_HEADER, SERVICE_TOKEN_TYPE
from chassis.verified_tokens import VerifiedTokens

# How a service's verifier checks a token's signature and claims: (token, audience, typ) -> claims.
VerifyClaims = Callable[[str, str, str], Awaitable[dict[str, Any]]]


class InvalidServiceTokenError(UnauthorizedError):
    code = "invalid-service-token"
    title = "Invalid or missing service token"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = f'Bearer realm="{SERVICE_REALM}", error="invalid_token"'


class CallerNotAllowedError(ForbiddenError):
    code = "caller-not-allowed"
    title = "This service may not call this route"


@dataclass(frozen=True, slots=True)
class ServiceCaller:
    """The calling service, as its verified token says."""

    name: str


class ServiceTokenVerifier:
    """Verifies service tokens meant for `audience` (this service), remembering verified ones."""

    def __init__(
        self,
        verify_claims: VerifyClaims,
        *,
        audience: str,
        max_remembered: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verify_claims = verify_claims
        self._audience = audience
        self._verified: VerifiedTokens[ServiceCaller] = VerifiedTokens(
            max_entries=max_remembered, clock=clock
        )

    async def verify(self, token: str) -> ServiceCaller:
        caller = self._verified.get(token)
        if caller is not None:
            return caller
        try:
            claims = await self._verify_claims(token, self._audience, SERVICE_TOKEN_TYPE)
        except UnauthorizedError as exc:
            raise InvalidServiceTokenError(exc.detail) from None
        caller = ServiceCaller(str(claims["sub"]))
        self._verified.keep(token, caller, float(claims["exp"]))
        return caller


def service_token(header: str | None) -> str:
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        msg = "A service token is required in `Fleet-Service-Authorization: Bearer <token>`."
        raise InvalidServiceTokenError(msg)
    return token.strip()


def ServiceCallers(*callers: str) -> Any:  # noqa: N802 - reads as a type in a signature
    """The dependency of a route only these services may call, e.g.
    `APIRouter(dependencies=[ServiceCallers("orders")])` or a parameter
    `caller: Annotated[ServiceCaller, ServiceCallers("orders")]`. The app holds a
    `ServiceTokenVerifier` in `app.state.service_verifier` (`chassis.tokens.token_verification`
    puts one there)."""
    allowed = frozenset(callers)

    async def service_caller(request: Request) -> ServiceCaller:
        token = service_token(request.headers.get(SERVICE_TOKEN_HEADER))
        verifier: ServiceTokenVerifier = request.app.state.service_verifier
        caller = await verifier.verify(token)
        if caller.name not in allowed:
            raise CallerNotAllowedError(
                f"{caller.name} may not call this route; it serves {', '.join(sorted(allowed))}."
            )
        return caller

    return Depends(service_caller)
