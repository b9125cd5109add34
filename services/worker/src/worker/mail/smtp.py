"""Sending one e-mail over SMTP (aiosmtplib), to the server `SMTP_URL` names.

Each mail's `Message-ID` is derived from the id of the event it announces. The sender cannot
make "send" and "mark as sent" one atomic step: if it dies between them the mail is sent again
after a restart, with the same `Message-ID`, so mail systems and clients that deduplicate on it
show it once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


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


def compose(*, event_id: uuid.UUID, sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(event_id, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(body)
    return message


async def send(server: SmtpServer, message: EmailMessage, *, timeout: float) -> None:
    """Hand the message to the server; raises PermanentMailError when it refuses every
    recipient for good, any other exception for what a later attempt may get through."""
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.use_tls,
            timeout=timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        if all(500 <= refused.code < 600 for refused in exc.recipients):
            raise PermanentMailError(str(exc)) from exc
        raise
