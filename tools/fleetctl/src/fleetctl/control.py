"""The running fleet's control socket: `fleetctl restart` asks the `fleetctl up` in another
terminal to roll services, over a Unix socket in the state directory (`fleet.sock`).

One request per connection, a JSON line `{"restart": ["orders"]}` (an empty list: every service
in turn); the answer is one line per service restarted, then `ok` or `failed: <why>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from fleetctl.supervisor import ROLL_ORDER, Fleet, FleetFailedError

SOCKET_NAME = "fleet.sock"


async def serve(fleet: Fleet, state_dir: Path) -> asyncio.Server:
    path = state_dir / SOCKET_NAME
    path.unlink(missing_ok=True)
    lock = asyncio.Lock()  # one rolling restart at a time

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = json.loads(await reader.readline())
            names = [str(n) for n in request.get("restart", [])] or list(ROLL_ORDER)
            async with lock:
                for name in names:
                    took = await fleet.roll(name)
                    writer.write(f"{name} restarted in {took:.1f} s\n".encode())
                    await writer.drain()
            writer.write(b"ok\n")
        except (FleetFailedError, KeyError, ValueError) as exc:
            writer.write(f"failed: {exc}\n".encode())
        finally:
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()

    return await asyncio.start_unix_server(handle, path=str(path))


async def request_restart(state_dir: Path, names: Sequence[str], say: Callable[[str], None]) -> int:
    """Ask the fleet to restart `names` (every service when empty); 0 when every one took over."""
    try:
        reader, writer = await asyncio.open_unix_connection(str(state_dir / SOCKET_NAME))
    except OSError:
        say("fleet: no running fleet to restart (start one with `make up`)")
        return 2
    writer.write(json.dumps({"restart": list(names)}).encode() + b"\n")
    await writer.drain()
    code = 1
    async for raw in reader:
        line = raw.decode().rstrip("\n")
        say(f"fleet: {line}")
        if line == "ok":
            code = 0
    writer.close()
    return code
