"""SMTP sessions are kept open between mails and replaced when the server dropped them."""

from __future__ import annotations

import uuid
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.controller import Controller
from worker_sinks import free_port

from worker.mail.smtp import SmtpConnections, SmtpServer, compose


class _Peers:
    """Which client connection (its address) brought each mail."""

    def __init__(self) -> None:
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.peers.append(session.peer)
        return "250 Message accepted for delivery"


def _mail() -> Any:
    return compose(
        event_id=uuid.uuid4(), sender="fleet@example.com", to="a@example.com", subject="s", body="b"
    )


async def test_consecutive_mails_share_one_session() -> None:
    peers = _Peers()
    port = free_port()
    controller = Controller(peers, hostname="127.0.0.1", port=port)
    controller.start()
    connections = SmtpConnections(SmtpServer("127.0.0.1", port, use_tls=False), timeout=5)
    try:
        for _ in range(3):
            await connections.send(_mail())
    finally:
        await connections.close()
        controller.stop()
    assert len(peers.peers) == 3
    assert len(set(peers.peers)) == 1


async def test_a_session_the_server_dropped_is_replaced_and_the_mail_still_goes() -> None:
    peers = _Peers()
    port = free_port()
    first = Controller(peers, hostname="127.0.0.1", port=port)
    first.start()
    connections = SmtpConnections(SmtpServer("127.0.0.1", port, use_tls=False), timeout=5)
    await connections.send(_mail())
    first.stop()  # the pooled session is now closed by the server's side
    second = Controller(peers, hostname="127.0.0.1", port=port)
    second.start()
    try:
        await connections.send(_mail())
    finally:
        await connections.close()
        second.stop()
    assert len(peers.peers) == 2
    assert peers.peers[0] != peers.peers[1]


async def test_sessions_idle_too_long_are_not_reused() -> None:
    peers = _Peers()
    port = free_port()
    controller = Controller(peers, hostname="127.0.0.1", port=port)
    controller.start()
    now = [0.0]
    connections = SmtpConnections(
        SmtpServer("127.0.0.1", port, use_tls=False),
        timeout=5,
        idle_seconds=30,
        clock=lambda: now[0],
    )
    try:
        await connections.send(_mail())
        now[0] = 31.0
        await connections.send(_mail())
    finally:
        await connections.close()
        controller.stop()
    assert len(set(peers.peers)) == 2


async def test_a_mail_with_non_ascii_text_arrives_intact() -> None:
    received: list[bytes] = []

    class _Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(envelope.content)
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(_Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    connections = SmtpConnections(SmtpServer("127.0.0.1", port, use_tls=False), timeout=5)
    mail = compose(
        event_id=uuid.uuid4(),
        sender="Fleet <fleet@example.com>",
        to="zoe@example.com",
        subject="Bestätigung: 24,90 €",
        body="Grüße,\nIhre Bestellung über 24,90 € ist bestätigt.\n",
    )
    try:
        await connections.send(mail)
    finally:
        await connections.close()
        controller.stop()
    [raw] = received
    assert raw.isascii()  # 7-bit clean on the wire
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == "Bestätigung: 24,90 €"
    text = parsed.get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF
    assert text == "Grüße,\nIhre Bestellung über 24,90 € ist bestätigt.\n"
