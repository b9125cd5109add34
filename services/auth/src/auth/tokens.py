"""Access tokens (short-lived JWTs signed by the key ring) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from auth.keyring import KeyRing
from chassis.tokens import Principal, principal_from

LEEWAY_SECONDS = 5.0


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """Only this digest is stored: a leaked table cannot be replayed as tokens."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str


class TokenIssuer:
    def __init__(
        self,
        *,
        ring: KeyRing,
        issuer: str,
        audience: str,
        access_ttl_seconds: int,
        refresh_ttl_seconds: int,
    ) -> None:
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_seconds = access_ttl_seconds
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)

    def access_token(self, *, subject: str, roles: Sequence[str], now: datetime) -> str:
        issued_at = int(now.timestamp())
        return self.ring.sign(
            {
                "iss": self.issuer,
                "aud": self.audience,
                "sub": subject,
                "iat": issued_at,
                "nbf": issued_at,
                "exp": issued_at + self.access_ttl_seconds,
                "jti": uuid.uuid4().hex,
                "roles": list(roles),
                "typ": "access",
            }
        )

    def verify(self, token: str) -> Principal:
        claims = self.ring.decode(
            token, issuer=self.issuer, audience=self.audience, leeway=LEEWAY_SECONDS
        )
        return principal_from(claims, token)
