"""The webhook dispatcher: claims due deliveries and sends each, signed, in a task of its own.

Bulkheads keep one subscriber's trouble its own: at most `WEBHOOK_PER_SUBSCRIPTION_CONCURRENCY`
deliveries of a subscription are in flight per replica (a subscription at its limit is not even
claimed for), at most `WEBHOOK_CONCURRENCY` in all, and every attempt has its own deadline
(`WEBHOOK_TIMEOUT_SECONDS`). A subscriber that hangs therefore holds two slots, not the queue.

An attempt is delivered on 2xx; retried after `min(cap, base * 2**(attempt-1))` full jitter (at
least the `Retry-After` the subscriber asked for) on 408, 429, 5xx, timeouts and connection
errors; failed at once on any other answer (redirects are not followed) or when the destination
is no longer a public address; failed after `WEBHOOK_MAX_ATTEMPTS` attempts.

Delivery is at least once: a crash between the subscriber's 2xx and the row's update sends the
event again once the claim's lease runs out. Every attempt carries the event id as `webhook-id`,
which receivers use to drop duplicates. After a secret rotation, attempts are signed with the new
and the replaced secret until the overlap window ends (two signatures in `webhook-signature`),
then with the new one only. A paused subscription's deliveries are not claimed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import aiohttp
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.clients import transport_cause
from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.loops import BackgroundLoop
from contracts.webhooks import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from worker.backoff import full_jitter, retry_after_seconds
from worker.metrics import WEBHOOK_DELIVERIES, WEBHOOK_DURATION
from worker.models import DeliveryStatus
from worker.settings import WorkerSettings
from worker.webhooks import destinations
from worker.webhooks.repository import ClaimedDelivery, WebhookRepository

USER_AGENT = "Fleet-Webhooks/1"
RETRYABLE_STATUS = frozenset({408, 429})

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Attempt:
    status: DeliveryStatus  # PENDING means: retry
    status_code: int | None = None
    error: str | None = None
    retry_after: float | None = None


def judge(response: httpx.Response) -> Attempt:
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(DeliveryStatus.DELIVERED, code)
    if code in RETRYABLE_STATUS or code >= 500:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return Attempt(DeliveryStatus.PENDING, code, f"HTTP {code}", retry_after)
    return Attempt(DeliveryStatus.FAILED, code, f"HTTP {code} (not retried)")


def transport_error(exc: BaseException, timeout: float) -> str:
    """What went wrong on the way to the subscriber, as its delivery log says it."""
    cause = transport_cause(exc)
    if isinstance(cause, aiohttp.ClientConnectorError | httpx.ConnectError):
        return f"could not connect: {cause}"  # refused, unreachable, DNS
    if isinstance(cause, TimeoutError | httpx.TimeoutException | aiohttp.ServerTimeoutError):
        return f"no answer within {timeout}s"
    return f"{type(cause).__name__}: {cause}"


class Dispatcher:
    """`loop` claims due deliveries and sends each in a task of its own; `loop.wake()` when a
    delivery was staged."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: WorkerSettings,
        client: httpx.AsyncClient,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._client = client
        self._busy: Counter[uuid.UUID] = Counter()
        # The destination check and the request each have the timeout; the lease outlives both.
        self._lease_seconds = 2 * settings.webhook_timeout_seconds + 5
        self.loop = BackgroundLoop(
            "webhook_dispatcher", self.claim_and_send, every_seconds=settings.worker_poll_seconds
        )

    async def claim_and_send(self) -> bool:
        """Claim due deliveries within the bulkheads and start each; whether more may be due."""
        free = self._settings.webhook_concurrency - self.loop.in_flight
        if free <= 0:
            return False
        per_subscription = self._settings.webhook_per_subscription_concurrency
        full = [sid for sid, n in self._busy.items() if n >= per_subscription]
        claimed: list[ClaimedDelivery] = []
        async with UnitOfWork(self._sessions) as uow:
            due = await uow.repository(WebhookRepository).due_subscriptions(
                exclude=full, limit=free
            )
            for subscription_id in due:
                room = min(per_subscription - self._busy[subscription_id], free - len(claimed))
                if room <= 0:
                    break
                claimed += await uow.repository(WebhookRepository).claim(
                    subscription_id, limit=room, lease_seconds=self._lease_seconds
                )
            await uow.commit()
        for delivery in claimed:
            self._busy[delivery.subscription_id] += 1
            self.loop.spawn(self._deliver(delivery), name=f"webhook-{delivery.id}")
        return bool(claimed)

    async def _deliver(self, delivery: ClaimedDelivery) -> None:
        started = time.perf_counter()
        try:
            attempt = await self._attempt(delivery)
            WEBHOOK_DURATION.observe(time.perf_counter() - started)
            await self._settle(delivery, attempt)
        except Exception as exc:
            # The lease runs out and the delivery is attempted again.
            log.warning(
                "webhook_settle_failed", delivery_id=str(delivery.id), error=type(exc).__name__
            )
        finally:
            self._busy[delivery.subscription_id] -= 1
            if self._busy[delivery.subscription_id] <= 0:
                del self._busy[delivery.subscription_id]

    async def _attempt(self, delivery: ClaimedDelivery) -> Attempt:
        timeout = self._settings.webhook_timeout_seconds
        try:
            await destinations.check(
                delivery.url, allow_private=self._settings.webhooks_allow_private, timeout=timeout
            )
        except destinations.DestinationRefusedError as exc:
            return Attempt(DeliveryStatus.FAILED, error=str(exc))
        timestamp = int(time.time())
        headers = {
            ID_HEADER: str(delivery.event_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(
                delivery.signing_secrets, str(delivery.event_id), timestamp, delivery.body
            ),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        try:
            async with (
                asyncio.timeout(timeout),
                self._client.stream(
                    "POST", delivery.url, content=delivery.body.encode(), headers=headers
                ) as response,
            ):
                # The answer's body is never read: only its status (and Retry-After) count.
                return judge(response)
        except Exception as exc:
            return Attempt(DeliveryStatus.PENDING, error=transport_error(exc, timeout))

    async def _settle(self, delivery: ClaimedDelivery, attempt: Attempt) -> None:
        status, retry_in, error = attempt.status, None, attempt.error
        if status is DeliveryStatus.PENDING:
            if delivery.attempts >= self._settings.webhook_max_attempts:
                status = DeliveryStatus.FAILED
                error = f"{error}; gave up after {delivery.attempts} attempts"
            else:
                retry_in = max(
                    full_jitter(
                        delivery.attempts,
                        base=self._settings.webhook_backoff_base_seconds,
                        cap=self._settings.webhook_backoff_cap_seconds,
                    ),
                    attempt.retry_after or 0.0,
                )
        async with UnitOfWork(self._sessions) as uow:
            await uow.repository(WebhookRepository).settle(
                delivery.id,
                status=status,
                status_code=attempt.status_code,
                error=error,
                retry_in_seconds=retry_in,
            )
            await uow.commit()
        self._record(delivery, status, attempt, error, retry_in)

    def _record(
        self,
        delivery: ClaimedDelivery,
        status: DeliveryStatus,
        attempt: Attempt,
        error: str | None,
        retry_in: float | None,
    ) -> None:
        fields = {
            "delivery_id": str(delivery.id),
            "subscription_id": str(delivery.subscription_id),
            "event_id": str(delivery.event_id),
            "attempts": delivery.attempts,
            "status_code": attempt.status_code,
        }
        if status is DeliveryStatus.DELIVERED:
            WEBHOOK_DELIVERIES.labels("delivered").inc()
            log.info("webhook_delivered", **fields)
        elif status is DeliveryStatus.FAILED:
            WEBHOOK_DELIVERIES.labels("failed").inc()
            log.error("webhook_failed", error=error, **fields)
        else:
            WEBHOOK_DELIVERIES.labels("retried").inc()
            log.warning(
                "webhook_retry_scheduled", error=error, retry_in=round(retry_in or 0, 3), **fields
            )
