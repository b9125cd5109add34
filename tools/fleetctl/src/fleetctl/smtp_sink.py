"""A local SMTP server that keeps every message it receives as a `.eml` file.

`make up` runs it for the worker (`SMTP_URL`); read what the fleet sent with any mail client or
`cat .fleet/mail/*.eml`. Tests use :class:`MailSink` in-process. Loopback only; never a relay.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from fleetctl.signals import until_signalled

# Asked before a received message is kept: None keeps it, a reply (e.g. "451 ...") refuses it.
Screen = Callable[[], Awaitable[str | None]]


class _SaveToFolder:
    def __init__(self, folder: Path, screen: Screen | None) -> None:
        self.folder = folder
        self.screen = screen

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.screen is not None:
            refusal = await self.screen()
            if refusal is not None:
                return refusal
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_bytes(data)
        temporary.rename(self.folder / name)  # readers never see half a message
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on loopback saving messages into `folder`. `screen` (run on the sink's own
    event loop, in its thread) may refuse a message before it is kept, as a real server can."""

    def __init__(
        self,
        folder: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        screen: Screen | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_SaveToFolder(folder, screen), hostname=host, port=port)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailSink:
        if self._controller.port == 0:
            import socket  # noqa: PLC0415 - only needed to pick a free port

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                self._controller.port = sock.getsockname()[1]
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def messages(self) -> list[Message]:
        return [message_from_bytes(p.read_bytes()) for p in sorted(self.folder.glob("*.eml"))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fleetctl.smtp_sink")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".fleet/mail"))
    args = parser.parse_args(argv)
    sink = MailSink(args.dir, port=args.port).start()
    print(f"smtp sink on 127.0.0.1:{sink.port}, saving to {args.dir}/", flush=True)

    try:
        asyncio.run(until_signalled())
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
