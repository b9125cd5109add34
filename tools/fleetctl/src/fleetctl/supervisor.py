"""Run the fleet as local processes, supervised as Kubernetes would run its pods.

- **Interleaved prefixed logs**, and each service's last lines kept for the error that names it.
- **Listening sockets held by the supervisor.** Each service's port is bound here and handed
  down (`LISTEN_FD`), as systemd's socket activation does. A new process of a service accepts
  from the same socket as the one it replaces, so a rolling restart refuses and loses no
  connection, and a crashed service's clients wait in the backlog for its replacement instead
  of being refused. A service stopped on purpose (`stop_service`) closes its port.
- **Readiness by systemd's notify protocol**: the chassis sends `READY=1` to `NOTIFY_SOCKET`
  once its resources are open, which is what a rolling restart waits for before draining the
  process being replaced.
- **Restart with backoff** (`supervise=True`): a service that dies (kill -9, OOM, any exit the
  supervisor did not ask for) is restarted after 0.5 s, doubling per crash up to 30 s, reset once
  a process has run 30 s; each restart is logged. A service that exits `crash_loop_limit` times
  in a row before it was ever ready is crash-looping: the supervisor gives up and `failed()`
  answers with that service's last log lines.
- **Clean stop**: children run in their own sessions so a Ctrl-C reaches only the supervisor,
  which sends each service one SIGTERM (stop accepting, finish in-flight requests, close pools)
  and kills whatever is still alive after the grace period.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fleetctl.stack import SERVICES, Stack

COLORS = ("\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m")
RESET = "\033[0m"
SERVICE_NAMES = tuple(s.name for s in SERVICES)
# A rolling restart of the whole fleet: the services others call first, the edge last.
ROLL_ORDER = ("auth", "catalog", "orders", "worker", "gateway")


class FleetFailedError(RuntimeError):
    """A service exited or did not become ready; the message carries its last log lines."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    first_delay: float = 0.5
    max_delay: float = 30.0
    # A process that ran this long before it died starts the backoff over.
    stable_after: float = 30.0
    # Exits in a row before the service was ever ready that stop the fleet.
    crash_loop_limit: int = 3


@dataclass(eq=False)
class ServiceProcess:
    name: str
    process: asyncio.subprocess.Process
    notify: socket.socket
    started_at: float = field(default_factory=time.monotonic)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    # Replaced by a rolling restart or stopped on purpose: its exit is not a crash.
    retired: bool = False
    pump: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Fleet:
    def __init__(
        self,
        stack: Stack,
        *,
        services: Sequence[str] = SERVICE_NAMES,
        emit: Callable[[str], None] | None = None,
        colors: bool = False,
        supervise: bool = False,
        policy: RestartPolicy = RestartPolicy(),
    ) -> None:
        self.stack = stack
        self.services = list(services)
        self.emit = emit
        self.colors = colors
        self.supervise = supervise
        self.policy = policy
        self.running: dict[str, ServiceProcess] = {}
        self.restarts: collections.Counter[str] = collections.Counter()
        self.listeners: dict[str, socket.socket] = {}
        self._tails: dict[str, collections.deque[str]] = {}
        self._delays: dict[str, float] = {}
        self._unready_exits: collections.Counter[str] = collections.Counter()
        self._restarting: set[asyncio.Task[None]] = set()
        self._failed: asyncio.Future[FleetFailedError] | None = None
        self._stopping = False
        self._spawned = 0
        self._notify_dir = Path(tempfile.mkdtemp(prefix="fleet-notify-"))

    # -- output ---------------------------------------------------------------------------------

    def _prefix(self, name: str) -> str:
        width = max(len(s) for s in self.services)
        label = f"{name:<{width}} |"
        if not self.colors:
            return label
        color = COLORS[self.services.index(name) % len(COLORS)]
        return f"{color}{label}{RESET}"

    def say(self, text: str) -> None:
        if self.emit is not None:
            self.emit(f"fleet: {text}")

    async def _pump(self, name: str, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        prefix = self._prefix(name)
        tail = self._tails.setdefault(name, collections.deque(maxlen=5000))
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            if self.emit is not None:
                self.emit(f"{prefix} {line}")

    def tail(self, name: str) -> str:
        return "\n".join(self._tails.get(name, ()))

    # -- processes ------------------------------------------------------------------------------

    def _listener(self, name: str) -> socket.socket:
        sock = self.listeners.get(name)
        if sock is None:
            sock = socket.create_server(("127.0.0.1", self.stack.port(name)), backlog=2048)
            self.listeners[name] = sock
        return sock

    def _notify_socket(self, name: str) -> tuple[socket.socket, str]:
        self._spawned += 1
        path = str(self._notify_dir / f"{name}-{self._spawned}.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        return sock, path

    def _on_notify(self, svc: ServiceProcess) -> None:
        with contextlib.suppress(OSError):
            message = svc.notify.recv(4096)
            if b"READY=1" in message.split(b"\n"):
                svc.ready.set()

    async def start_service(self, name: str) -> ServiceProcess:
        """Start a process of `name` on the service's socket; it becomes the current one."""
        listener = self._listener(name)
        notify, notify_path = self._notify_socket(name)
        env = {
            **os.environ,
            **self.stack.env_for(name),
            "LISTEN_FD": str(listener.fileno()),
            "NOTIFY_SOCKET": notify_path,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            name,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            pass_fds=(listener.fileno(),),
        )
        svc = ServiceProcess(name, process, notify)
        asyncio.get_running_loop().add_reader(notify.fileno(), self._on_notify, svc)
        svc.pump = asyncio.create_task(self._pump(name, process))
        svc.watcher = asyncio.create_task(self._watch(svc))
        self.running[name] = svc
        return svc

    async def start(self) -> None:
        for name in self.services:
            await self.start_service(name)

    async def _watch(self, svc: ServiceProcess) -> None:
        code = await svc.process.wait()
        if svc.pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(svc.pump), 1.0)
        asyncio.get_running_loop().remove_reader(svc.notify.fileno())
        with contextlib.suppress(OSError):
            os.unlink(svc.notify.getsockname())
        svc.notify.close()
        name = svc.name
        superseded = self.running.get(name) is not svc
        if svc.retired or superseded or self._stopping or not self.supervise:
            return
        ran = time.monotonic() - svc.started_at
        if svc.ready.is_set():
            self._unready_exits[name] = 0
        else:
            self._unready_exits[name] += 1
            if self._unready_exits[name] >= self.policy.crash_loop_limit:
                self._fail(
                    name,
                    f"is crash-looping: it exited {self._unready_exits[name]} times in a row "
                    f"before it was ready (last: {describe_exit(code)})",
                )
                return
        delay = self._delays.get(name, self.policy.first_delay)
        if svc.ready.is_set() and ran >= self.policy.stable_after:
            delay = self.policy.first_delay
        self._delays[name] = min(delay * 2, self.policy.max_delay)
        self.say(
            f"{name} exited ({describe_exit(code)}) after {ran:.1f} s; "
            f"restarting in {delay:.1f} s (restart {self.restarts[name] + 1})"
        )
        task = asyncio.create_task(self._restart_later(name, svc, delay))
        self._restarting.add(task)
        task.add_done_callback(self._restarting.discard)

    async def _restart_later(self, name: str, crashed: ServiceProcess, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stopping or self.running.get(name) is not crashed:
            return
        self.restarts[name] += 1
        await self.start_service(name)

    def _fail(self, name: str, why: str) -> None:
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
        if not self._failed.done():
            self._failed.set_result(self._failure(name, why))

    def _failure(self, name: str, why: str) -> FleetFailedError:
        tail = "\n".join(self.tail(name).splitlines()[-60:])
        return FleetFailedError(f"{name} {why}; its last output:\n{tail}")

    async def failed(self) -> FleetFailedError:
        """Wait until supervision gives up on a service (it crash-loops at start)."""
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
        return await self._failed

    async def wait_ready(self, timeout: float = 60.0, names: Sequence[str] | None = None) -> None:
        """Wait until each service's `/readyz` answers 200. Unsupervised, a service that exits
        fails this at once; supervised, it is restarted and only a crash loop fails it."""
        deadline = time.monotonic() + timeout
        pending = set(names or self.running)
        async with httpx.AsyncClient(timeout=1.0) as client:
            while pending:
                if self._failed is not None and self._failed.done():
                    raise self._failed.result()
                for name in sorted(pending):
                    svc = self.running[name]
                    code = svc.process.returncode
                    if code is not None and not self.supervise:
                        raise self._failure(name, f"exited ({describe_exit(code)})")
                    with contextlib.suppress(httpx.HTTPError):
                        response = await client.get(f"{self.stack.url(name)}/readyz")
                        if response.status_code == 200:
                            pending.discard(name)
                if pending and time.monotonic() > deadline:
                    raise self._failure(sorted(pending)[0], f"not ready after {timeout:.0f} s")
                if pending:
                    await asyncio.sleep(0.2)

    # -- rolling restart ------------------------------------------------------------------------

    async def roll(self, name: str, *, timeout: float = 60.0, grace: float = 15.0) -> float:
        """Replace `name`'s process without a refused or failed request: start the new one on
        the same socket, wait until it is ready, then drain the old one (SIGTERM: it stops
        accepting and finishes what it holds). Returns the seconds it took."""
        begin = time.monotonic()
        old = self.running[name]
        new = await self.start_service(name)
        ready = asyncio.create_task(new.ready.wait())
        exited = asyncio.create_task(new.process.wait())
        done, _ = await asyncio.wait(
            {ready, exited}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        ready.cancel()
        exited.cancel()
        if not new.ready.is_set():
            # The old process keeps serving; the new one is dropped.
            self.running[name] = old
            new.retired = True
            await self._terminate(new, grace)
            why = "exited" if exited in done else f"was not ready after {timeout:.0f} s"
            raise self._failure(name, f"did not take over: its new process {why}")
        old.retired = True
        await self._terminate(old, grace)
        took = time.monotonic() - begin
        self.say(f"{name} restarted in {took:.1f} s (pid {old.process.pid} -> {new.process.pid})")
        return took

    async def roll_all(self, names: Sequence[str] = ROLL_ORDER) -> dict[str, float]:
        return {name: await self.roll(name) for name in names if name in self.running}

    # -- stopping -------------------------------------------------------------------------------

    async def _terminate(self, svc: ServiceProcess, grace: float) -> int | None:
        if svc.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                svc.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(svc.process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    svc.process.kill()
                await svc.process.wait()
        if svc.watcher is not None:
            await svc.watcher
        return svc.process.returncode

    async def stop_service(self, name: str, grace: float = 8.0) -> int | None:
        """Stop `name` on purpose: it is not restarted and its port is closed (clients are
        refused until `start_service` opens it again)."""
        svc = self.running.pop(name)
        svc.retired = True
        listener = self.listeners.pop(name, None)
        if listener is not None:
            listener.close()
        return await self._terminate(svc, grace)

    async def stop(self, grace: float = 8.0) -> dict[str, int | None]:
        """SIGTERM every service at once, then kill stragglers after `grace` seconds."""
        self._stopping = True
        for task in list(self._restarting):
            task.cancel()
        names = list(self.running)
        codes = await asyncio.gather(*(self.stop_service(n, grace) for n in names))
        for sock in self.listeners.values():
            sock.close()
        self.listeners.clear()
        with contextlib.suppress(OSError):
            self._notify_dir.rmdir()
        return dict(zip(names, codes, strict=True))
