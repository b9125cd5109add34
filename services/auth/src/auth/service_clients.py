"""The services auth issues tokens to (OAuth 2.0 client credentials, RFC 6749 section 4.4).

Each calling service is a confidential client: its `client_id` is its name, its secret comes from
its Secret (`<NAME>_CLIENT_SECRET` here, `SERVICE_CLIENT_SECRET` in the caller), and it
may ask for tokens only for the services it calls (`audience`, one callee per token; anything
else is `invalid_target`, RFC 8707's error). The token says `sub` = `client_id` = the caller,
`aud` = the callee, `typ` = `service`; it lives `SERVICE_TOKEN_TTL_SECONDS` (5 minutes) and is
signed with the key ring's active key, so callees verify it with the JWKS they already fetch.
Callers cache it (`chassis.service_tokens`): this grant is never on a request's path.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from auth.exceptions import InvalidClientError, InvalidTargetError
from auth.settings import AuthSettings
from auth.tokens import TokenIssuer
from chassis.service_tokens import SERVICE_TOKEN_TYPE

# Who calls whom inside the fleet: a client may get tokens for these audiences only.
CALLEES: Mapping[str, frozenset[str]] = {
    "gateway": frozenset({"auth", "catalog", "orders", "worker"}),
    "orders": frozenset({"catalog"}),
    # Exports and the reconciliation read orders and catalog's reservations.
    "worker": frozenset({"orders", "catalog"}),
}


@dataclass(frozen=True, slots=True)
class ServiceToken:
    access_token: str
    expires_in: int


class ServiceClients:
    def __init__(self, secrets: Mapping[str, str], *, ttl_seconds: int) -> None:
        self._secrets = {client: secret.encode() for client, secret in secrets.items()}
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> ServiceClients:
        return cls(
            {
                "gateway": settings.gateway_client_secret.get_secret_value(),
                "orders": settings.orders_client_secret.get_secret_value(),
                "worker": settings.worker_client_secret.get_secret_value(),
            },
            ttl_seconds=settings.service_token_ttl_seconds,
        )

    def authenticate(self, client_id: str, client_secret: str) -> str:
        """The client, when the secret is its own; InvalidClientError otherwise (an unknown
        client costs the same comparison as a wrong secret)."""
        expected = self._secrets.get(client_id)
        matches = hmac.compare_digest(expected or b"\0" * 32, client_secret.encode())
        if expected is None or not matches:
            raise InvalidClientError("Unknown client or wrong client secret.")
        return client_id

    def issue(
        self, issuer: TokenIssuer, *, client_id: str, audience: str, now: datetime
    ) -> ServiceToken:
        if audience not in CALLEES.get(client_id, frozenset()):
            raise InvalidTargetError(f"{client_id} may not have tokens for {audience!r}.")
        issued_at = int(now.timestamp())
        token = issuer.ring.sign(
            {
                "iss": issuer.issuer,
                "aud": audience,
                "sub": client_id,
                "client_id": client_id,
                "iat": issued_at,
                "nbf": issued_at,
                "exp": issued_at + self.ttl_seconds,
                "jti": uuid.uuid4().hex,
                "typ": SERVICE_TOKEN_TYPE,
            }
        )
        return ServiceToken(token, self.ttl_seconds)
