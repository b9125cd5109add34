from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr

from chassis.messaging.runtime import BrokerSettings
from chassis.settings import DEFAULT_CLIENT_SECRET, WithAudit

DEFAULT_ADMIN_PASSWORD = "admin-password-change-me"  # noqa: S105 - refused outside local/test


class AuthSettings(BrokerSettings, WithAudit):
    guarded_secrets: ClassVar[dict[str, str]] = {
        "fleet_admin_password": DEFAULT_ADMIN_PASSWORD,
        "gateway_client_secret": DEFAULT_CLIENT_SECRET,
        "orders_client_secret": DEFAULT_CLIENT_SECRET,
        "worker_client_secret": DEFAULT_CLIENT_SECRET,
    }

    service_name: str = "auth"
    port: int = 8001
    database_url: str = "postgresql+asyncpg://fleet_auth:fleet_auth@127.0.0.1:5432/fleet"

    # Directory of `<kid>.pem` private keys: all are published, the active one signs.
    jwt_keys_dir: Path = Path(".fleet/keys")
    # Kid that signs new tokens; unset: the lexicographically greatest (the newest rotated key).
    jwt_active_kid: str | None = None
    jwt_issuer: str = "fleet-auth"
    jwt_audience: str = "fleet"
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    # Service tokens (client credentials grant, `auth.service_clients`): their lifetime, and
    # the secret of each calling service (the same value as that service's
    # SERVICE_CLIENT_SECRET).
    service_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    gateway_client_secret: SecretStr = SecretStr(DEFAULT_CLIENT_SECRET)
    orders_client_secret: SecretStr = SecretStr(DEFAULT_CLIENT_SECRET)
    worker_client_secret: SecretStr = SecretStr(DEFAULT_CLIENT_SECRET)
    # Argon2 needs ~64 MiB per hash; this bounds the memory a burst of logins can take.
    password_hash_concurrency: int = Field(default=4, ge=1)

    fleet_admin_email: str = "admin@example.com"
    fleet_admin_password: SecretStr = SecretStr(DEFAULT_ADMIN_PASSWORD)
