"""The local fleet: which services exist, their ports, and the environment each process gets.

Services read plain 12-factor variables (`PORT`, `DATABASE_URL`, ...); this module is where the
local stack derives each process's values from one set of `FLEET_*`/`<SERVICE>_PORT` overrides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from fleetctl import s3_emulator

ROOT = Path(__file__).resolve().parents[4]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    default_port: int
    schema: str | None  # None: owns no database schema
    uses_redis: bool = False

    @property
    def role(self) -> str:
        return f"fleet_{self.name}"

    @property
    def directory(self) -> Path:
        return ROOT / "services" / self.name


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("auth", 8001, "auth"),
    ServiceSpec("catalog", 8002, "catalog", uses_redis=True),
    ServiceSpec("orders", 8003, "orders"),
    ServiceSpec("worker", 8004, "worker"),
    ServiceSpec("gateway", 8000, None, uses_redis=True),
)
DB_SERVICES = tuple(s for s in SERVICES if s.schema)


def spec(name: str) -> ServiceSpec:
    return next(s for s in SERVICES if s.name == name)


def role_password(service: ServiceSpec) -> str:
    """Local-only role passwords; real environments inject DATABASE_URL from a secret store."""
    return os.environ.get(f"FLEET_{service.name.upper()}_DB_PASSWORD", service.role)


# Services that call others and so hold a client secret at auth (client credentials grant).
SERVICE_CLIENTS = ("gateway", "orders", "worker")


def client_secret(name: str) -> str:
    """Local-only client secrets, derived like the role passwords; real environments inject
    SERVICE_CLIENT_SECRET (and auth its <NAME>_CLIENT_SECRET) from a secret store."""
    return os.environ.get(f"FLEET_{name.upper()}_CLIENT_SECRET", f"fleet_{name}_client")


@dataclass(frozen=True)
class Stack:
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_admin_user: str = "postgres"
    database: str = "fleet"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = ""
    # Non-empty: the fleet gets its own exchange and queue names (tests share one broker).
    amqp_namespace: str = ""
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    state_dir: Path = ROOT / ".fleet"
    ports: Mapping[str, int] = field(default_factory=dict)
    smtp_port: int = 1025
    # The local S3 emulator (`fleetctl.s3_emulator`) and the bucket the worker writes to.
    s3_port: int = s3_emulator.DEFAULT_PORT
    s3_bucket: str = "fleet"
    fleet_env: str = "local"
    log_level: str = "INFO"
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Stack:
        return cls(
            pg_host=env.get("PGHOST", "127.0.0.1"),
            pg_port=int(env.get("PGPORT", "5432")),
            pg_admin_user=env.get("PGUSER", "postgres"),
            database=env.get("FLEET_DATABASE", "fleet"),
            redis_url=env.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_key_prefix=env.get("FLEET_REDIS_KEY_PREFIX", ""),
            amqp_namespace=env.get("FLEET_AMQP_NAMESPACE", ""),
            state_dir=Path(env.get("FLEET_STATE_DIR", str(ROOT / ".fleet"))),
            amqp_url=env.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
            ports={
                s.name: int(env.get(f"{s.name.upper()}_PORT", s.default_port)) for s in SERVICES
            },
            smtp_port=int(env.get("SMTP_PORT", "1025")),
            s3_port=int(env.get("S3_PORT", str(s3_emulator.DEFAULT_PORT))),
            log_level=env.get("LOG_LEVEL", "INFO"),
        )

    def with_(self, **changes: object) -> Stack:
        return replace(self, **changes)  # type: ignore[arg-type]

    def port(self, name: str) -> int:
        return self.ports.get(name, spec(name).default_port)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    @property
    def admin_dsn(self) -> str:
        """libpq/asyncpg DSN of the superuser, on the fleet database."""
        return f"postgresql://{self.pg_admin_user}@{self.pg_host}:{self.pg_port}/{self.database}"

    @property
    def maintenance_dsn(self) -> str:
        return f"postgresql://{self.pg_admin_user}@{self.pg_host}:{self.pg_port}/postgres"

    def database_url(self, service: ServiceSpec) -> str:
        return (
            f"postgresql+asyncpg://{service.role}:{role_password(service)}"
            f"@{self.pg_host}:{self.pg_port}/{self.database}"
        )

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def mail_dir(self) -> Path:
        return self.state_dir / "mail"

    @property
    def keys_dir(self) -> Path:
        return self.state_dir / "keys"

    def env_for(self, name: str) -> dict[str, str]:
        """The complete environment of one service process."""
        service = spec(name)
        env = {
            "FLEET_ENV": self.fleet_env,
            "LOG_LEVEL": self.log_level,
            "HOST": "127.0.0.1",
            "PORT": str(self.port(name)),
            "AMQP_URL": self.amqp_url,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": f"{self.redis_key_prefix}{name}:",
            "AUTH_JWKS_URL": f"{self.url('auth')}/v1/auth/jwks",
            "PYTHONUNBUFFERED": "1",
        }
        if self.amqp_namespace:
            env["AMQP_EXCHANGE"] = f"{self.amqp_namespace}fleet.events"
            env["AMQP_QUEUE_PREFIX"] = self.amqp_namespace
            env["AMQP_QUEUE_EXPIRES_MS"] = "600000"
        if service.schema:
            env["DATABASE_URL"] = self.database_url(service)
        if name == "auth":
            env["JWT_KEYS_DIR"] = str(self.keys_dir)
            for client in SERVICE_CLIENTS:
                env[f"{client.upper()}_CLIENT_SECRET"] = client_secret(client)
        if name in SERVICE_CLIENTS:
            env["AUTH_TOKEN_URL"] = f"{self.url('auth')}/v1/auth/token"
            env["SERVICE_CLIENT_SECRET"] = client_secret(name)
        if name == "worker":
            # The local SMTP sink, and webhook receivers on this machine are allowed locally.
            env["SMTP_URL"] = f"smtp://127.0.0.1:{self.smtp_port}"
            env["WEBHOOKS_ALLOW_PRIVATE"] = "true"
            # Exports and reports go to the local S3 emulator's bucket (created if missing).
            endpoint = s3_emulator.S3Endpoint(self.s3_url)
            env.update(endpoint.env(self.s3_bucket, create_bucket=True))
            # Orders and reservations from their services' own ports (exports, reconciliation).
            env["ORDERS_URL"] = self.url("orders")
            env["CATALOG_URL"] = self.url("catalog")
        if name == "orders":
            env["CATALOG_URL"] = self.url("catalog")
        if name == "gateway":
            for upstream in ("auth", "catalog", "orders", "worker"):
                env[f"{upstream.upper()}_URL"] = self.url(upstream)
        env.update(self.extra_env)
        return env
