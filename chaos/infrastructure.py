"""Faults of the servers the fleet stands on: the machine's PostgreSQL, RabbitMQ and Redis.

Each fault leaves its server running as it found it: whatever happens in between, the `finally`
starts it again with the project's own start script (`scripts/ensure-services.sh`, what `make`
runs). Broker connections are dropped only for the fleet under test (by the connection names
the chassis gives them), so other users of the shared broker are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENSURE_SERVICES = ROOT / "scripts" / "ensure-services.sh"
# In `rabbitmqctl list_connections client_properties`: {"connection_name","<name>"}
_CONNECTION_NAME = re.compile(r'\{"connection_name","([^"]*)"\}')


class CommandFailedError(RuntimeError):
    pass


async def _run(*argv: str, timeout: float = 60.0) -> str:
    """Run a command to its exit; its output. The output goes through a file, not a pipe: a
    server the command starts inherits it and would hold a pipe open long after."""
    with tempfile.TemporaryFile() as output:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output
        )
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise CommandFailedError(f"{' '.join(argv)} took more than {timeout:.0f} s") from None
        output.seek(0)
        text = output.read().decode(errors="replace")
    if process.returncode != 0:
        raise CommandFailedError(f"{' '.join(argv)} failed ({process.returncode}): {text[-500:]}")
    return text


async def ensure_services() -> None:
    """Start whichever of PostgreSQL, Redis and RabbitMQ is down (and wait until they answer)."""
    await _run("bash", str(ENSURE_SERVICES), timeout=120)


async def drop_broker_connections(name_prefix: str) -> int:
    """Close every broker connection whose name starts with `name_prefix`; how many."""
    listed = await _run("rabbitmqctl", "-q", "list_connections", "pid", "client_properties")
    closed = 0
    for line in listed.splitlines():
        pid, _, properties = line.partition("\t")
        name = _CONNECTION_NAME.search(properties)
        if name and name.group(1).startswith(name_prefix):
            await _run("rabbitmqctl", "-q", "close_connection", pid, "chaos: connection dropped")
            closed += 1
    return closed


async def stop_and_start_rabbitmq(down_seconds: float) -> None:
    """Stop the RabbitMQ application (every listener and queue goes away), then start it."""
    try:
        await _run("rabbitmqctl", "-q", "stop_app")
        await asyncio.sleep(down_seconds)
    finally:
        await _run("rabbitmqctl", "-q", "start_app")
        await _run("rabbitmqctl", "-q", "await_startup")


def _postgres_version() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    if not versions:
        raise CommandFailedError("no PostgreSQL cluster under /etc/postgresql")
    return versions[0]


async def restart_postgres() -> None:
    """A fast restart: every connection is cut, in-flight transactions roll back."""
    try:
        await _run(
            "pg_ctlcluster", "--skip-systemctl-redirect", "-m", "fast",
            _postgres_version(), "main", "restart",
        )  # fmt: skip
    finally:
        await ensure_services()


async def restart_redis() -> None:
    """Shut Redis down (it keeps nothing on disk here: every key is gone) and start it again."""
    try:
        await _run("redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave")
    except CommandFailedError as exc:
        if "connection" not in str(exc).lower():  # the shutdown itself cuts redis-cli off
            raise
    finally:
        await ensure_services()
