"""A consuming service's event handlers, registered by payload class.

Each handler is registered for one payload class and called with an instance of it, so it is
typed for what it handles (no `payload: Any` narrowed by hand):

    async def on_stock_reserved(
        uow: UnitOfWork, event: CloudEvent, payload: StockReservedV1
    ) -> None: ...

    handlers = Handlers().add(StockReservedV1, on_stock_reserved)

The consumer (`chassis.messaging.consumer`) subscribes its queue to `handlers.event_types` and
calls the handler of each event's type in the unit of work that records it in the inbox: the
handler's repositories (`uow.repository`), the events it stages in the outbox and its
after-commit actions (`uow.after_commit`) all belong to that one transaction. A
payload class must be the one `contracts.events.EVENT_TYPES` names for its type (the class the
consumer parses events into): registering another is refused when the service starts.

Commands (`contracts.commands`) are handled the same way, by a registry of command handlers,
`Handlers.for_commands()`, given to the service's command consumer:

    commands = Handlers.for_commands().add(GenerateExportV1, exports.generate)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar, cast

from chassis.db import UnitOfWork
from contracts.commands import COMMAND_TYPES
from contracts.events import EVENT_TYPES, CloudEvent, EventPayload

P = TypeVar("P", bound=EventPayload)

Handler = Callable[[UnitOfWork, CloudEvent, P], Awaitable[None]]


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help: the message is dead-lettered at once."""


class PayloadMismatchError(PermanentError):
    """An event's payload is not of the class its handler was registered for."""


@dataclass(frozen=True, slots=True)
class _Registered:
    payload_type: type[EventPayload]
    handler: Callable[[UnitOfWork, CloudEvent, Any], Awaitable[None]]

    async def __call__(self, uow: UnitOfWork, event: CloudEvent, payload: EventPayload) -> None:
        if not isinstance(payload, self.payload_type):
            msg = (
                f"{event.type}: expected {self.payload_type.__name__}, got {type(payload).__name__}"
            )
            raise PayloadMismatchError(msg)
        await self.handler(uow, event, payload)


class Handlers:
    """Handlers by event type (or by command type: `for_commands`); one per type."""

    def __init__(
        self, types: Mapping[str, type[EventPayload]] = EVENT_TYPES, *, kind: str = "event"
    ) -> None:
        """`types`: the registry messages are parsed against (`kind` names it in errors)."""
        self.types = dict(types)
        self.kind = kind
        self._by_type: dict[str, _Registered] = {}

    @classmethod
    def for_commands(cls) -> Handlers:
        """Handlers of commands, parsed against `contracts.commands.COMMAND_TYPES`."""
        return cls(COMMAND_TYPES, kind="command")

    def add(self, payload_type: type[P], handler: Handler[P]) -> Self:
        event_type = payload_type.event_type
        if self.types.get(event_type) is not payload_type:
            msg = f"{payload_type.__name__} is not the payload class of a known {self.kind} type"
            raise ValueError(msg)
        if event_type in self._by_type:
            msg = f"a handler for {event_type} is registered already"
            raise ValueError(msg)
        self._by_type[event_type] = _Registered(payload_type, cast(Handler[Any], handler))
        return self

    @property
    def event_types(self) -> list[str]:
        return sorted(self._by_type)

    def get(
        self, event_type: str
    ) -> Callable[[UnitOfWork, CloudEvent, EventPayload], Awaitable[None]] | None:
        """The handler of `event_type` (checking the payload's class), or None."""
        return self._by_type.get(event_type)
