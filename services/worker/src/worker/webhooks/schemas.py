"""The HTTP shapes of webhook subscriptions and deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from contracts.events import OrderCancelledV1, OrderConfirmedV1, OrderRejectedV1, UserRegisteredV1
from worker.models import URL_MAX_LENGTH

# The event types the worker consumes, hence the only ones it can deliver.
SUBSCRIBABLE_EVENTS: tuple[str, ...] = (
    UserRegisteredV1.event_type,
    OrderConfirmedV1.event_type,
    OrderRejectedV1.event_type,
    OrderCancelledV1.event_type,
)


class SubscriptionIn(BaseModel):
    """`{url, events: [type]}`; duplicate types are merged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1, max_length=URL_MAX_LENGTH)
    events: list[str] = Field(min_length=1, max_length=len(SUBSCRIBABLE_EVENTS) * 4)

    @field_validator("events")
    @classmethod
    def _known_types(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - set(SUBSCRIBABLE_EVENTS))
        if unknown:
            msg = f"unknown event types {unknown}; known: {list(SUBSCRIBABLE_EVENTS)}"
            raise ValueError(msg)
        return list(dict.fromkeys(events))


class SubscriptionCreated(BaseModel):
    """The only response that shows the secret: the subscriber must keep it."""

    id: uuid.UUID
    url: str
    events: list[str]
    secret: str


class SubscriptionOut(BaseModel):
    """A subscription as its owner reads it: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    created_at: datetime
    # Since when its deliveries are held (null: active).
    paused_at: datetime | None
    # Until when the secret the last rotation replaced still signs beside the current one.
    previous_secret_expires_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def status(self) -> Literal["active", "paused"]:
        return "active" if self.paused_at is None else "paused"


class SubscriptionPage(BaseModel):
    items: list[SubscriptionOut]
    next_cursor: str | None


# The longest a rotated-out secret may go on signing, whatever the request asks.
MAX_OVERLAP_SECONDS = 7 * 24 * 3600


class RotateSecretIn(BaseModel):
    """`{overlap_seconds}`: how long the replaced secret goes on signing beside the new one
    (0: it stops at once, as after a leak); `WEBHOOK_SECRET_OVERLAP_HOURS` when left out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    overlap_seconds: int | None = Field(default=None, ge=0, le=MAX_OVERLAP_SECONDS)


class SecretRotated(BaseModel):
    """The only response besides the subscription's creation that shows a secret."""

    id: uuid.UUID
    secret: str
    # Deliveries are signed with the new and the replaced secret until then (null: new only).
    previous_secret_expires_at: datetime | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
