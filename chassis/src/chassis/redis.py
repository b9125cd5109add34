"""The Redis client every service uses: bounded waits and no retries, so an outage costs one
short timeout instead of stalling requests behind reconnect loops. Each command is a CLIENT
span of the current trace (OpenTelemetry's Redis instrumentation, on this client only)."""

from __future__ import annotations

from opentelemetry.instrumentation.redis import RedisInstrumentor
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chassis.settings import WithRedis


def redis_client(settings: WithRedis) -> Redis:
    client = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), retries=0),
        health_check_interval=0,
    )
    RedisInstrumentor.instrument_client(client)
    return client
