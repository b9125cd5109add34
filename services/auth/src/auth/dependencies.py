"""`Annotated` dependency aliases; the objects themselves are built in `main.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from auth.passwords import Passwords
from auth.service_clients import ServiceClients
from auth.tokens import TokenIssuer
from chassis.db import UnitOfWork
from chassis.problems import UnauthorizedError
from chassis.security import admin_principal
from chassis.tokens import Principal, bearer_token


async def _uow(request: Request) -> UnitOfWork:
    return UnitOfWork(request.app.state.sessions)


async def _passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


async def _issuer(request: Request) -> TokenIssuer:
    issuer: TokenIssuer = request.app.state.issuer
    return issuer


async def _service_clients(request: Request) -> ServiceClients:
    clients: ServiceClients = request.app.state.service_clients
    return clients


async def _principal(
    request: Request, issuer: Annotated[TokenIssuer, Depends(_issuer)]
) -> Principal:
    """The caller, verified against this service's own key ring (no HTTP call to itself)."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise UnauthorizedError("A bearer access token is required.")
    return issuer.verify(token)


async def admin(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    """The caller, who must be an admin (the audit trail's reader)."""
    return await admin_principal(principal)


UowDep = Annotated[UnitOfWork, Depends(_uow)]
PasswordsDep = Annotated[Passwords, Depends(_passwords)]
IssuerDep = Annotated[TokenIssuer, Depends(_issuer)]
ServiceClientsDep = Annotated[ServiceClients, Depends(_service_clients)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
