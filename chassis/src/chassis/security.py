"""FastAPI dependencies for the caller's identity: `CurrentPrincipal` and `AdminPrincipal`.

The app must hold a :class:`TokenVerifier` in `app.state.verifier`.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from chassis.problems import ForbiddenError, UnauthorizedError
from chassis.tokens import Principal, bearer_token

ADMIN_ROLE = "admin"
# Only for the OpenAPI document (the `bearer` scheme, and `security` on each operation that takes
# a token): the header is parsed below, with the chassis's own errors.
BEARER = HTTPBearer(scheme_name="bearer", bearerFormat="JWT", auto_error=False)


class TokenVerifier(Protocol):
    """What `app.state.verifier` must be: a JwksVerifier, or auth's own local key ring."""

    async def verify(self, token: str) -> Principal: ...


async def current_principal(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Principal:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise UnauthorizedError("A bearer access token is required.")
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(token)
    request.state.principal = principal  # the actor of what the request does (`chassis.audit`)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def admin_principal(principal: CurrentPrincipal) -> Principal:
    if not principal.has_role(ADMIN_ROLE):
        raise ForbiddenError("This operation needs the admin role.")
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
