"""HTTP surface of the auth service: `/v1/auth/...` (translation only; logic is in service.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Response
from starlette.responses import JSONResponse

from auth import service
from auth.dependencies import (
    CurrentPrincipal,
    IssuerDep,
    PasswordsDep,
    ServiceClientsDep,
    UowDep,
)
from auth.exceptions import InvalidRequestError, UnsupportedGrantTypeError
from auth.schemas import (
    LogoutRequest,
    Me,
    RegisterRequest,
    ServiceTokenResponse,
    TokenResponse,
    UserCreated,
)

router = APIRouter(prefix="/v1/auth", tags=["auth"])

FormField = Annotated[str | None, Form()]
JWKS_CACHE_CONTROL = "public, max-age=300"


@router.post(
    "/register",
    status_code=201,
    responses={
        201: {
            "description": "The account; sign in with `POST /v1/auth/token`.",
            "links": {"SignIn": {"operationId": "token_v1_auth_token_post"}},
        },
        409: {"description": "An account with this e-mail address already exists."},
    },
)
async def register(body: RegisterRequest, uow: UowDep, passwords: PasswordsDep) -> UserCreated:
    user = await service.register(
        uow=uow, passwords=passwords, email=body.email, password=body.password
    )
    return UserCreated(id=user.id, email=user.email, created_at=user.created_at)


@router.post(
    "/token",
    responses={
        401: {
            "description": "Wrong credentials, a refresh token not valid (any more), or a "
            "service's wrong client credentials."
        }
    },
)
async def token(
    *,
    response: Response,
    uow: UowDep,
    passwords: PasswordsDep,
    issuer: IssuerDep,
    service_clients: ServiceClientsDep,
    grant_type: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
    audience: FormField = None,
) -> TokenResponse | ServiceTokenResponse:
    """OAuth 2.0 token endpoint (RFC 6749): the password and refresh_token grants for users,
    the client_credentials grant for the fleet's own services (`auth.service_clients`)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    if grant_type == "client_credentials":
        if not client_id or not client_secret or not audience:
            raise InvalidRequestError(
                "The client_credentials grant needs `client_id`, `client_secret` and `audience`."
            )
        client = service_clients.authenticate(client_id, client_secret)
        issued = service_clients.issue(
            issuer, client_id=client, audience=audience, now=datetime.now(UTC)
        )
        return ServiceTokenResponse(access_token=issued.access_token, expires_in=issued.expires_in)
    if grant_type == "password":
        if not username or not password:
            raise InvalidRequestError("The password grant needs `username` and `password`.")
        pair = await service.password_grant(
            uow=uow, passwords=passwords, issuer=issuer, username=username, password=password
        )
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise InvalidRequestError("The refresh_token grant needs `refresh_token`.")
        pair = await service.refresh_grant(uow=uow, issuer=issuer, refresh_token=refresh_token)
    elif not grant_type:
        raise InvalidRequestError("`grant_type` is required (form-encoded).")
    else:
        raise UnsupportedGrantTypeError(
            "Supported grant types: password, refresh_token, client_credentials."
        )
    return TokenResponse(
        access_token=pair.access_token,
        expires_in=pair.expires_in,
        refresh_token=pair.refresh_token,
    )


@router.post("/logout", status_code=204)
async def logout(body: LogoutRequest, principal: CurrentPrincipal, uow: UowDep) -> Response:
    await service.logout(uow=uow, subject=principal.subject, refresh_token=body.refresh_token)
    return Response(status_code=204)


@router.get("/me")
async def me(principal: CurrentPrincipal, uow: UowDep) -> Me:
    user = await service.current_user(uow=uow, subject=principal.subject)
    return Me(id=user.id, email=user.email, roles=user.roles)


@router.get("/jwks")
async def jwks(issuer: IssuerDep) -> JSONResponse:
    return JSONResponse(issuer.ring.jwks(), headers={"Cache-Control": JWKS_CACHE_CONTROL})
