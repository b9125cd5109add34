"""Real endpoints the worker's tests send to: an SMTP server (aiosmtpd) that keeps every mail,
and an HTTP webhook receiver (uvicorn) whose endpoints answer from a script."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response

from fleetctl.testing import serve_in_thread


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_url(scheme: str = "http") -> str:
    """A loopback URL nothing listens on: connecting is refused at once."""
    return f"{scheme}://127.0.0.1:{free_port()}"


@dataclass
class Mailbox:
    """Every mail the SMTP server accepted, parsed."""

    mails: list[Message] = field(default_factory=list)
    url: str = ""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        mail = message_from_bytes(envelope.content)
        mail["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.mails.append(mail)
        return "250 Message accepted for delivery"

    def about(self, event_id: uuid.UUID | str) -> list[Message]:
        """The mails announcing this event (their Message-ID is derived from its id)."""
        return [m for m in self.mails if str(event_id) in str(m["Message-ID"])]

    def to(self, address: str) -> list[Message]:
        return [m for m in self.mails if m["To"] == address]


class SmtpServer:
    def __init__(self, mailbox: Mailbox) -> None:
        port = free_port()
        self._controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        self._controller.start()
        mailbox.url = f"smtp://127.0.0.1:{port}"

    def stop(self) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()


@dataclass
class Endpoint:
    """One receiving URL: answers with its script in order, then 200 for ever."""

    url: str
    script: list[Reply]
    requests: list[Received] = field(default_factory=list)

    def next_reply(self) -> Reply:
        index = len(self.requests) - 1
        return self.script[index] if index < len(self.script) else Reply()


class WebhookReceiver:
    """A uvicorn server on a free loopback port, in a thread of its own (so a receiver that
    sleeps never blocks the tests' event loop)."""

    def __init__(self) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        self._serving = ExitStack()
        self.base_url = self._serving.enter_context(serve_in_thread(self._app()))

    def endpoint(self, *script: Reply) -> Endpoint:
        name = uuid.uuid4().hex
        endpoint = Endpoint(url=f"{self.base_url}/hooks/{name}", script=list(script))
        self._endpoints[name] = endpoint
        return endpoint

    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{name}")
        async def receive(name: str, request: Request) -> Response:
            endpoint = self._endpoints[name]
            endpoint.requests.append(
                Received(dict(request.headers), await request.body(), time.monotonic())
            )
            reply = endpoint.next_reply()
            await asyncio.sleep(reply.delay)
            return Response(status_code=reply.status, headers=reply.headers)

        return app

    def stop(self) -> None:
        self._serving.close()
