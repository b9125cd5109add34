"""Request and response bodies of the auth API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

# Stored and compared lower-cased, so `Ann@Example.com` and `ann@example.com` are one account.
NormalisedEmail = Annotated[EmailStr, AfterValidator(str.lower)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: NormalisedEmail
    password: str = Field(min_length=8, max_length=128)


class UserCreated(BaseModel):
    id: uuid.UUID
    email: str
    created_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int
    refresh_token: str


class ServiceTokenResponse(BaseModel):
    """A service's token (client credentials grant): no refresh token (RFC 6749 4.4.3)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=512)


class Me(BaseModel):
    id: uuid.UUID
    email: str
    roles: list[str]
