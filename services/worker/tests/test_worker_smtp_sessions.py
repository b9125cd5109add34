"""SMTP sessions are kept open between mails and replaced when the server dropped them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from worker_sinks import free_port

from worker.mail.smtp import SmtpConnections, SmtpServer, compose


class Server:
    """A real SMTP server on loopback that notes which client connection brought each mail."""

    def __init__(self) -> None:
        self.port = free_port()
        self.peers: list[Any] = []
        self.contents: list[bytes] = []
        self._controller = self._start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.peers.append(session.peer)
        self.contents.append(envelope.content)
        return "250 Message accepted for delivery"

    def _start(self) -> Controller:
        controller = Controller(self, hostname="127.0.0.1", port=self.port)
        controller.start()
        return controller

    def restart(self) -> None:
        """Stop (closing every client's session) and serve again on the same port."""
        self._controller.stop()
        self._controller = self._start()

    def stop(self) -> None:
        self._controller.stop()

    def connections(self, **options: Any) -> SmtpConnections:
        return SmtpConnections(SmtpServer("127.0.0.1", self.port, use_tls=False), **options)


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.stop()


def _mail(**fields: str) -> Message:
    values = {"sender": "fleet@example.com", "to": "a@example.com", "subject": "s", "body": "b"}
    return compose(event_id=uuid.uuid4(), **{**values, **fields})


async def test_consecutive_mails_share_one_session(server: Server) -> None:
    connections = server.connections(timeout=5)
    try:
        for _ in range(3):
            await connections.send(_mail())
    finally:
        await connections.close()
    assert len(server.peers) == 3
    assert len(set(server.peers)) == 1


async def test_a_session_the_server_dropped_is_replaced_and_the_mail_still_goes(
    server: Server,
) -> None:
    connections = server.connections(timeout=5)
    try:
        await connections.send(_mail())
        server.restart()  # the pooled session is now closed by the server's side
        await connections.send(_mail())
    finally:
        await connections.close()
    assert len(server.peers) == 2
    assert server.peers[0] != server.peers[1]


async def test_sessions_idle_too_long_are_not_reused(server: Server) -> None:
    now = [0.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    connections = server.connections(timeout=5, idle_seconds=30, clock=clock)
    try:
        await connections.send(_mail())
        now[0] = 31.0
        await connections.send(_mail())
    finally:
        await connections.close()
    assert len(set(server.peers)) == 2


async def test_a_mail_with_non_ascii_text_arrives_intact(server: Server) -> None:
    connections = server.connections(timeout=5)
    try:
        await connections.send(
            _mail(
                sender="Fleet <fleet@example.com>",
                subject="Bestätigung: 24,90 €",
                body="Grüße,\nIhre Bestellung über 24,90 € ist bestätigt.\n",
            )
        )
    finally:
        await connections.close()
    [raw] = server.contents
    assert raw.isascii()  # 7-bit clean on the wire
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Bestätigung: 24,90 €"
    text = parsed.get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF
    assert text == "Grüße,\nIhre Bestellung über 24,90 € ist bestätigt.\n"
