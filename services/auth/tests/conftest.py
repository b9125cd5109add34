"""Fixtures of the auth tests: the real app on a migrated database, keys in a temporary dir."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from auth.keyfiles import ensure_key
from auth.main import build_app
from auth.settings import AuthSettings

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    id: str
    email: str
    password: str


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture(scope="session")
def auth_database_url(fleet_database: Any) -> str:
    url: str = fleet_database.migrate("auth")
    return url


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    ensure_key(directory)
    return directory


@pytest.fixture
def settings(
    auth_database_url: str, keys_dir: Path, broker_namespace: dict[str, Any]
) -> AuthSettings:
    return AuthSettings(
        _env_file=None,
        fleet_env="test",
        database_url=auth_database_url,
        jwt_keys_dir=keys_dir,
        **broker_namespace,
    )


@pytest.fixture
async def app(settings: AuthSettings) -> AsyncIterator[FastAPI]:
    application = build_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
def register(client: httpx.AsyncClient) -> Callable[..., Awaitable[Account]]:
    async def create(email: str | None = None, password: str = PASSWORD) -> Account:
        email = email or unique_email()
        response = await client.post(
            "/v1/auth/register", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        return Account(response.json()["id"], email.lower(), password)

    return create


@pytest.fixture
async def account(register: Callable[..., Awaitable[Account]]) -> Account:
    return await register()


@pytest.fixture
def login(client: httpx.AsyncClient) -> Callable[[Account], Awaitable[dict[str, Any]]]:
    async def password_grant(who: Account) -> dict[str, Any]:
        response = await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": who.email, "password": who.password},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return password_grant


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


@pytest.fixture
def auth_header() -> Callable[[str], dict[str, str]]:
    return bearer


@pytest.fixture
def new_email() -> Callable[[], str]:
    return unique_email
