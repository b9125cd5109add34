"""The CloudEvents 1.0 JSON envelope (structured mode) with Fleet's tracing extensions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class EventPayload(BaseModel):
    """Base of every event's `data`; subclasses set `event_type` to their versioned type.

    Readers are tolerant: unknown fields are ignored, so a producer may add an optional field
    without breaking consumers that do not know it yet.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, use_attribute_docstrings=True)

    event_type: ClassVar[str]


class CloudEvent(BaseModel):
    """CloudEvents 1.0 attributes plus `traceparent`, `correlationid` and `causationid`.

    `subject` is the aggregate the event is about (an order id, a product id): the outbox keeps
    events of one subject in order.
    """

    model_config = ConfigDict(extra="allow", frozen=True, use_attribute_docstrings=True)

    specversion: Literal["1.0"] = "1.0"
    id: UUID = Field(default_factory=uuid4)
    source: str = Field(min_length=1)
    """The producing service, `/fleet/<service>`."""
    type: str = Field(min_length=1)
    """The versioned event type, e.g. `order.placed.v1`: it names the schema of `data`."""
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: Literal["application/json"] = "application/json"
    subject: str | None = None
    data: dict[str, Any]
    traceparent: str | None = None
    """W3C trace context of the transaction that staged the event."""
    correlationid: str | None = None
    """Shared by every event of one business flow (e.g. an order's saga)."""
    causationid: str | None = None
    """Id of the event (or request) whose handling produced this event."""

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class InvalidEventError(ValueError):
    """The bytes are not a CloudEvent, or its data does not match the payload's schema."""


class UnknownEventError(ValueError):
    """A well-formed CloudEvent of a type this registry does not know."""


def new_event(
    payload: EventPayload,
    *,
    source: str,
    subject: str | None = None,
    traceparent: str | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> CloudEvent:
    """A fresh envelope (new id, current time) around `payload`, typed by its `event_type`."""
    return CloudEvent(
        source=source,
        type=payload.event_type,
        subject=subject,
        data=payload.model_dump(mode="json"),
        traceparent=traceparent,
        correlationid=correlation_id,
        causationid=causation_id,
    )


def parse_event(
    raw: bytes | str, registry: dict[str, type[EventPayload]]
) -> tuple[CloudEvent, EventPayload]:
    """Envelope and typed payload of a message body; raises Invalid/UnknownEventError."""
    try:
        document = json.loads(raw)
        event = CloudEvent.model_validate(document)
    except (ValueError, RecursionError) as exc:  # ValidationError is a ValueError
        msg = f"not a CloudEvent: {exc}"
        raise InvalidEventError(msg[:500]) from None
    payload_type = registry.get(event.type)
    if payload_type is None:
        msg = f"unknown event type {event.type!r}"
        raise UnknownEventError(msg)
    try:
        payload = payload_type.model_validate(event.data)
    except ValidationError as exc:
        msg = f"{event.type} data does not match its schema: {exc}"
        raise InvalidEventError(msg[:500]) from None
    return event, payload
