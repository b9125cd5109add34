"""Sending one e-mail over SMTP (aiosmtplib), to the server `SMTP_URL` names.

Each mail's `Message-ID` is derived from the id of the event it announces. The sender cannot
make "send" and "mark as sent" one atomic step: if it dies between them the mail is sent again
after a restart, with the same `Message-ID`, so mail systems and clients that deduplicate on it
show it once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.text import MIMEText
from email.utils import formatdate, parseaddr
from typing import cast
from urllib.parse import unquote, urlsplit

import aiosmtplib

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


class PermanentMailError(Exception):
    """The server refused the recipient for good (5xx): retrying cannot help."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    use_tls: bool
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """`smtp://[user:password@]host[:port]` (STARTTLS when the server offers it) or
        `smtps://...` (TLS from the first byte)."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            msg = "SMTP_URL must look like smtp://host:port or smtps://host:port"
            raise ValueError(msg)
        return cls(
            host=parts.hostname,
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            use_tls=parts.scheme == "smtps",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def message_id(event_id: uuid.UUID, sender: str) -> str:
    """The same for every attempt of one event's mail, so receivers can drop duplicates."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "fleet.local"
    return f"<{event_id}@{domain}>"


def compose(*, event_id: uuid.UUID, sender: str, to: str, subject: str, body: str) -> Message:
    """A plain-text mail. Built on the `compat32` classes: `EmailMessage` parses every header it
    is given through the header registry, several times the cost of the whole SMTP exchange,
    for headers written here from known values. Non-ASCII subjects are RFC 2047 encoded and
    non-ASCII bodies quoted-printable UTF-8, so the mail is 7-bit clean for any server."""
    # A Charset object picks the body's encoding (the stubs only admit a charset's name).
    charset = "us-ascii" if body.isascii() else cast(str, _UTF8_QP)
    message = MIMEText(body, "plain", charset)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(event_id, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    return message


class SmtpConnections:
    """SMTP sessions kept open between mails, so a mail costs its own three commands (MAIL,
    RCPT, DATA) instead of a connection, a greeting, EHLO (and TLS, and AUTH) and QUIT too.

    A session is used by one send at a time and put back after it; the callers bound how many
    are in use at once (the sender's concurrency). Sessions idle longer than `idle_seconds` are
    closed instead of reused (servers drop idle clients after a few minutes, RFC 5321 4.5.3.2).
    A pooled session the server closed meanwhile is noticed when the next mail is sent on it:
    that mail goes again at once on a new session; a failure on a new session is the mail's.
    """

    def __init__(
        self,
        server: SmtpServer,
        *,
        timeout: float,
        idle_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._server = server
        self._timeout = timeout
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []  # (session, put back at)

    async def send(self, message: Message) -> None:
        """Hand the message to the server; raises PermanentMailError when it refuses every
        recipient for good, any other exception for what a later attempt may get through."""
        session = self._take()
        if session is not None:
            try:
                await self._send_on(session, message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                session.close()  # went stale while idle; the mail goes again on a new session
            except BaseException:
                session.close()
                raise
            else:
                self._put_back(session)
                return
        session = await self._connect()
        try:
            await self._send_on(session, message)
        except BaseException:
            session.close()
            raise
        self._put_back(session)

    async def close(self) -> None:
        """QUIT every idle session (bounded by the timeout each)."""
        idle, self._idle = self._idle, []
        for session, _ in idle:
            try:
                await session.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                session.close()

    def _take(self) -> aiosmtplib.SMTP | None:
        now = self._clock()
        while self._idle:
            session, since = self._idle.pop()
            if now - since <= self._idle_seconds and session.is_connected:
                return session
            session.close()
        return None

    def _put_back(self, session: aiosmtplib.SMTP) -> None:
        self._idle.append((session, self._clock()))

    async def _connect(self) -> aiosmtplib.SMTP:
        server = self._server
        session = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            timeout=self._timeout,
        )
        await session.connect()
        return session

    async def _send_on(self, session: aiosmtplib.SMTP, message: Message) -> None:
        try:
            await session.send_message(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(500 <= refused.code < 600 for refused in exc.recipients):
                raise PermanentMailError(str(exc)) from exc
            raise
