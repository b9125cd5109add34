"""Settings shared by every service; each service subclasses :class:`ServiceSettings`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    """12-factor configuration read from the environment (and an optional `.env`)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Names of SecretStr fields whose development default must be replaced outside local/test.
    guarded_secrets: ClassVar[dict[str, str]] = {}

    service_name: str = "service"
    service_version: str = Field(default="0.1.0", validation_alias="SERVICE_VERSION")
    fleet_env: Environment = Environment.LOCAL
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    # A listening socket inherited from a supervisor (`fleetctl up`), served instead of binding
    # HOST:PORT; unset in a cluster, where each pod binds its own.
    listen_fd: int | None = Field(default=None, ge=0)
    # Seconds uvicorn waits for in-flight requests after SIGTERM before closing them.
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)
    # Requests with a larger body are refused with 413 before the app reads them.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # A request body must have arrived this long after the app first reads it; a client
    # trickling it in is answered 408 and its connection closed.
    body_timeout_seconds: float = Field(default=10.0, gt=0)
    # Timeout of each dependency check behind /readyz.
    readiness_timeout_seconds: float = Field(default=1.0, gt=0)
    # Requests served at once; past it a request is refused at once (503 + Retry-After) instead
    # of queueing behind the others (probes and /metrics always pass).
    max_in_flight_requests: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        if self.fleet_env in (Environment.LOCAL, Environment.TEST):
            return self
        # Every class's guards, so mixins that each guard a secret of their own combine.
        guarded: dict[str, str] = {}
        for klass in reversed(type(self).__mro__):
            guarded.update(vars(klass).get("guarded_secrets", {}))
        for field, default in guarded.items():
            value: Any = getattr(self, field)
            raw = value.get_secret_value() if isinstance(value, SecretStr) else value
            if raw == default:
                msg = f"{field.upper()} must be set outside local development"
                raise ValueError(msg)
        return self


class WithDatabase(ServiceSettings):
    """A service that owns a Postgres schema; it connects as its own role."""

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/fleet"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=5000, gt=0)
    # Retention purges (`chassis.retention`): how often they look for expired rows, and the
    # most rows one DELETE removes (each batch is a short transaction of its own).
    retention_scan_seconds: float = Field(default=300.0, gt=0)
    retention_batch_size: int = Field(default=1000, ge=1, le=10_000)


class WithAudit(WithDatabase):
    """A service that keeps an audit trail (`chassis.audit`) in its schema."""

    # How long audit records are kept before the retention purge deletes them.
    audit_retention_days: int = Field(default=365, ge=1)


class WithRedis(ServiceSettings):
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every key a service writes starts with this, so services (and test runs) never collide.
    redis_key_prefix: str = ""
    redis_timeout_seconds: float = Field(default=0.25, gt=0)


class WithBroker(ServiceSettings):
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Topic exchange every service publishes its events to (routing key = event type).
    amqp_exchange: str = "fleet.events"
    # Direct exchange every service sends its commands to (routing key = command type), which
    # routes each to the one queue of the service that handles it (`<service>.commands`).
    amqp_command_exchange: str = "fleet.commands"
    # Prepended to every queue name; lets several fleets (or test runs) share one broker.
    amqp_queue_prefix: str = ""
    # When set, queues are deleted after this long unused (for throw-away test fleets).
    amqp_queue_expires_ms: int | None = Field(default=None, gt=0)
    amqp_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # Longest wait for the broker's confirm of one publish (a blocked broker never hangs us).
    amqp_publish_timeout_seconds: float = Field(default=10.0, gt=0)
    # Messages a consumer handles concurrently (unacknowledged deliveries).
    consumer_prefetch: int = Field(default=16, ge=1)
    # Commands a replica handles concurrently: commands are heavier units of work (an export
    # streams thousands of rows), so fewer are in hand at once, each holding a database
    # connection until it is done.
    command_prefetch: int = Field(default=2, ge=1)
    # Delays before each retry of a failed message; after the last, it is dead-lettered.
    consumer_retry_delays_ms: list[int] = Field(default=[1000, 5000, 25000])
    # Deliveries of one message that ended without a settlement (its consumer died or lost its
    # connection while handling it) after which it is dead-lettered instead of handled again:
    # a message that kills its consumer must not take it down forever, and must never reach the
    # broker's own limit (RabbitMQ 4's quorum queues drop a message returned 20 times).
    consumer_redelivery_limit: int = Field(default=10, ge=1, le=19)
    # The relay is woken by NOTIFY; this is the polling fallback.
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=100, ge=1)
    # Published outbox rows are deleted this long after publication (unpublished ones never
    # are); they are kept only to look into what was sent.
    outbox_retention_days: int = Field(default=7, ge=1)
    # Inbox rows (ids of handled events) are deleted this long after handling. A copy of a
    # handled event arriving later is handled again, so this must exceed the longest time a
    # copy can still come: the retry delays, plus how long a dead letter may wait before an
    # operator replays it (`dlq replay`), plus a publisher's re-send after a crash (minutes).
    inbox_retention_days: int = Field(default=7, ge=1)

    @model_validator(mode="after")
    def _inbox_outlives_retries(self) -> WithBroker:
        retry_seconds = sum(self.consumer_retry_delays_ms) / 1000
        if self.inbox_retention_days * 86_400 <= retry_seconds:
            msg = (
                f"INBOX_RETENTION_DAYS ({self.inbox_retention_days}) must exceed the retry "
                f"schedule ({retry_seconds:.0f} s), or a retried copy of a handled event is "
                "handled twice"
            )
            raise ValueError(msg)
        return self


# The local S3 emulator's credentials (`make up`, the tests); refused anywhere else.
DEFAULT_S3_SECRET_ACCESS_KEY = "fleet-secret"  # noqa: S105


class WithObjectStorage(ServiceSettings):
    """A service that keeps files in an S3-compatible bucket (`chassis.storage`)."""

    guarded_secrets: ClassVar[dict[str, str]] = {
        "s3_secret_access_key": DEFAULT_S3_SECRET_ACCESS_KEY
    }

    # The S3 API the service calls; None: AWS's own endpoint for S3_REGION.
    s3_endpoint_url: str | None = "http://127.0.0.1:9000"
    # The address clients download presigned URLs from, when it differs from the one the
    # service calls (an in-cluster endpoint against a public one); None: S3_ENDPOINT_URL.
    s3_presign_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_bucket: str = Field(default="fleet", min_length=3, max_length=63)
    # The local defaults are the emulator's; a cluster gets them from its secret store.
    s3_access_key_id: SecretStr = SecretStr("fleet")
    s3_secret_access_key: SecretStr = SecretStr(DEFAULT_S3_SECRET_ACCESS_KEY)
    # Connect and read timeout of every call (each retried at most twice, standard mode).
    s3_timeout_seconds: float = Field(default=10.0, gt=0)
    # Uploads are sent in parts of this size (at most one is held in memory); S3 refuses
    # parts under 5 MiB, and an upload has at most 10,000 parts.
    s3_part_size_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    # How long a presigned download URL stays valid unless the caller asks otherwise (SigV4
    # allows at most 7 days).
    s3_presign_ttl_seconds: int = Field(default=300, gt=0, le=7 * 24 * 3600)
    # Create the bucket at start when missing (local development and tests); production
    # provisions it, and the service's credentials need not be allowed to create buckets.
    s3_create_bucket: bool = False

    @field_validator("s3_endpoint_url", "s3_presign_endpoint_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty variable (a chart's `endpointUrl: ""`) means AWS's own endpoint.
        return None if value == "" else value


class WithTokenVerification(ServiceSettings):
    """A service that verifies access tokens issued by auth."""

    auth_jwks_url: str = "http://127.0.0.1:8001/v1/auth/jwks"
    jwt_issuer: str = "fleet-auth"
    jwt_audience: str = "fleet"
    jwks_cache_seconds: float = Field(default=300.0, gt=0)


# A caller's client secret in local development and tests; refused anywhere else.
DEFAULT_CLIENT_SECRET = "local-client-secret-change-me"  # noqa: S105


class WithServiceIdentity(ServiceSettings):
    """A service that calls other services: it proves who it is with a short-lived token auth
    issues to it (OAuth 2.0 client credentials; `chassis.service_tokens`)."""

    guarded_secrets: ClassVar[dict[str, str]] = {"service_client_secret": DEFAULT_CLIENT_SECRET}

    # auth's token endpoint (its own port, not the gateway's).
    auth_token_url: str = "http://127.0.0.1:8001/v1/auth/token"  # noqa: S105 - a URL
    # This service's client secret at auth (its client id is SERVICE_NAME).
    service_client_secret: SecretStr = SecretStr(DEFAULT_CLIENT_SECRET)
    # Bound on one token request to auth; a call whose token is still valid never waits for it.
    service_token_timeout_seconds: float = Field(default=2.0, gt=0)
    # Share of a token's lifetime after which a fresh one is fetched (in the background while
    # the current one is still used).
    service_token_refresh_ratio: float = Field(default=0.8, gt=0, lt=1)
