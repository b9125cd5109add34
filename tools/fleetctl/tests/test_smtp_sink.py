"""The local SMTP sink keeps each received message as a readable `.eml` file."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from fleetctl.smtp_sink import MailSink


def test_received_mail_is_saved_as_an_eml_file(tmp_path: Path) -> None:
    sink = MailSink(tmp_path / "mail").start()
    try:
        message = EmailMessage()
        message["From"] = "no-reply@fleet.local"
        message["To"] = "ada@example.com"
        message["Subject"] = "Your order is confirmed"
        message.set_content("Total: 12.50 EUR")
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.send_message(message)
        [saved] = sink.messages()
    finally:
        sink.stop()
    assert saved["Subject"] == "Your order is confirmed"
    assert saved["To"] == "ada@example.com"
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
