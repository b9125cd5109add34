"""A local S3 API server (moto's) for the fleet's object storage (`chassis.storage`).

`make up` runs it as a child process for the worker (`S3_ENDPOINT_URL`, port `S3_PORT`, default
9000) with the bucket already created; tests run one in a thread of their own process
(`S3Emulator`, the `s3_server` fixture of `fleetctl.testing`). Loopback only. What it holds is
in memory: gone when it stops.

It is moto's S3, and moto checks no signature: on its own it would serve a presigned URL past its
expiry, or one whose signature was tampered with. What a client of the fleet relies on is
exactly that a download link stops working, so the emulator checks presigned URLs itself
(`PresignedUrlCheck`) as S3 does: the signature (SigV4 of the query, recomputed with botocore's
signer from the emulator's one key pair) and the expiry (`X-Amz-Date` + `X-Amz-Expires`), each
refused with S3's 403 error. Calls signed in their `Authorization` header (the services' own) are
left to moto, which takes any credentials. A request without any signature is refused (403) as
S3 refuses it, the objects being private.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hmac
import logging
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import httpx

from fleetctl.signals import until_signalled

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from werkzeug.serving import BaseWSGIServer

DEFAULT_PORT = 9000
ACCESS_KEY_ID = "fleet"
SECRET_ACCESS_KEY = "fleet-secret"  # noqa: S105 - the emulator takes any key
REGION = "us-east-1"


def unique_bucket() -> str:
    """A bucket name no other test (or run) uses: a valid S3 name, 3 to 63 characters."""
    return f"test-{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True, slots=True)
class S3Endpoint:
    """Where an S3 API server is and how to sign in: what a service's `WithObjectStorage`
    settings need."""

    url: str
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    region: str = REGION

    def settings(self, bucket: str, *, create_bucket: bool = True) -> dict[str, Any]:
        """`WithObjectStorage` fields for `bucket` on this server (created at start)."""
        return {
            "s3_endpoint_url": self.url,
            "s3_region": self.region,
            "s3_bucket": bucket,
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": self.secret_access_key,
            "s3_create_bucket": create_bucket,
        }

    def env(self, bucket: str, *, create_bucket: bool = True) -> dict[str, str]:
        """The same, as a service process's environment."""
        return {
            key.upper(): str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in self.settings(bucket, create_bucket=create_bucket).items()
        }


_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class PresignedUrlCheck:
    """WSGI middleware in front of moto: refuses a presigned URL (`X-Amz-Signature` in its
    query) whose SigV4 signature is not the one this key pair gives, or that has expired."""

    def __init__(
        self,
        app: WSGIApplication,
        *,
        access_key_id: str = ACCESS_KEY_ID,
        secret_access_key: str = SECRET_ACCESS_KEY,
        region: str = REGION,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = region
        self.clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-Signature=" not in query:
            return self.app(environ, start_response)
        refusal = self.refusal(environ, query)
        if refusal is None:
            return self.app(environ, start_response)
        code, message = refusal
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        ).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def refusal(self, environ: WSGIEnvironment, query: str) -> tuple[str, str] | None:
        """S3's error code and message for this presigned request, or None when it stands."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            signed_at = datetime.strptime(params["X-Amz-Date"], _AMZ_DATE).replace(tzinfo=UTC)
            lifetime = int(params["X-Amz-Expires"])
            access_key_id = params["X-Amz-Credential"].split("/", 1)[0]
        except (KeyError, ValueError):
            return "AuthorizationQueryParametersError", "Malformed query-string authentication"
        if access_key_id != self.access_key_id:
            return "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist"
        if not hmac.compare_digest(params["X-Amz-Signature"], self._signature(environ, query)):
            return "SignatureDoesNotMatch", "The request signature we calculated does not match"
        if self.clock() > signed_at + timedelta(seconds=lifetime):
            return "AccessDenied", "Request has expired"
        return None

    def _signature(self, environ: WSGIEnvironment, query: str) -> str:
        """The signature S3 computes for this request: botocore's signer over the request as
        received (its path and query exactly as sent, less the signature itself)."""
        from botocore.auth import S3SigV4QueryAuth  # noqa: PLC0415 - moto's dependency
        from botocore.awsrequest import AWSRequest  # noqa: PLC0415
        from botocore.credentials import Credentials  # noqa: PLC0415

        unsigned = "&".join(
            part for part in query.split("&") if not part.startswith("X-Amz-Signature=")
        )
        path = str(environ.get("RAW_URI") or environ.get("PATH_INFO", "/")).split("?", 1)[0]
        host = str(environ.get("HTTP_HOST", ""))
        request = AWSRequest(
            method=str(environ["REQUEST_METHOD"]),
            url=f"http://{host}{path}?{unsigned}",
            headers={"host": host},
        )
        params = dict(parse_qsl(query, keep_blank_values=True))
        request.context["timestamp"] = params["X-Amz-Date"]
        signer = S3SigV4QueryAuth(
            Credentials(self.access_key_id, self.secret_access_key),
            "s3",
            self.region,
            expires=int(params["X-Amz-Expires"]),
        )
        canonical = signer.canonical_request(request)
        return str(signer.signature(signer.string_to_sign(request, canonical), request))


class S3Emulator:
    """moto's S3 server, behind `PresignedUrlCheck`, on loopback in a thread of this process
    (`port` 0: a free one)."""

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._endpoint: S3Endpoint | None = None

    @property
    def endpoint(self) -> S3Endpoint:
        if self._endpoint is None:
            msg = "the S3 emulator is not started"
            raise RuntimeError(msg)
        return self._endpoint

    @property
    def url(self) -> str:
        return self.endpoint.url

    def start(self) -> S3Emulator:
        # One line per request otherwise, on the tests' or the fleet's output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self._port:
            # moto's server thread would wait forever for a port it cannot bind: fail here.
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self._host, self._port))
        # Imported here: the test support loads this module in every test session.
        from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server  # noqa: PLC0415

        app = PresignedUrlCheck(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._host, self._port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self._endpoint = S3Endpoint(f"http://{host!s}:{port}")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join()

    def create_bucket(self, name: str) -> None:
        """Create a bucket (the emulator takes an unsigned CreateBucket)."""
        httpx.put(f"{self.url}/{name}", timeout=10).raise_for_status()


# --- `make up`: the emulator as a supervised child process -------------------------------------


class EmulatorFailedError(RuntimeError):
    """The emulator did not start (a port in use...); the message carries its last output."""


class EmulatorProcess:
    """`make up`'s S3 emulator: `python -m fleetctl.s3_emulator` on `port`, ready once its
    bucket answers; restarted when it dies (empty, its bucket created again: it keeps nothing),
    after 0.5 s doubling up to 30 s; stopped with the fleet."""

    def __init__(self, *, port: int, bucket: str, emit: Callable[[str], None]) -> None:
        self.port = port
        self.bucket = bucket
        self.url = f"http://127.0.0.1:{port}"
        self._emit = emit
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._stopping = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The current process's id while it runs."""
        running = self._process is not None and self._process.returncode is None
        return self._process.pid if running and self._process is not None else None

    async def start(self, timeout: float = 30.0) -> None:
        """Start the process, wait until it serves its bucket, then watch it."""
        await self._spawn(timeout)
        self._watcher = asyncio.create_task(self._watch())

    async def _spawn(self, timeout: float) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fleetctl.s3_emulator",
            "--port",
            str(self.port),
            "--bucket",
            self.bucket,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C reaches the supervisor, which stops it
        )
        self._process = process
        self._pump = asyncio.create_task(self._read_output(process))
        await self._wait_ready(process, timeout)

    async def _read_output(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self._tail.append(line)
            self._emit(f"s3 | {line}")

    async def _wait_ready(self, process: asyncio.subprocess.Process, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if process.returncode is not None:
                    await self._drain_output()
                    msg = f"exited ({process.returncode}):\n" + "\n".join(self._tail)
                    raise EmulatorFailedError(msg)
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.head(f"{self.url}/{self.bucket}")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    await self._terminate(process)
                    msg = f"not ready after {timeout:.0f} s:\n" + "\n".join(self._tail)
                    raise EmulatorFailedError(msg)
                await asyncio.sleep(0.1)

    async def _drain_output(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), 1.0)

    async def _watch(self) -> None:
        delay = 0.5
        while True:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            self._emit(
                f"fleet: the S3 emulator exited ({code}); starting it again in {delay:.1f} s "
                "(what it held is gone)"
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            try:
                await self._spawn(30.0)
            except EmulatorFailedError as exc:
                self._emit(f"fleet: the S3 emulator did not start again: {exc}")
                continue
            self.restarts += 1
            self._emit(f"fleet: the S3 emulator is back on {self.url}")

    async def _terminate(self, process: asyncio.subprocess.Process, grace: float = 5.0) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def stop(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
        if self._process is not None:
            await self._terminate(self._process)
        await self._drain_output()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fleetctl.s3_emulator")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--bucket", action="append", default=[], help="create it at start")
    args = parser.parse_args(argv)
    emulator = S3Emulator(port=args.port).start()
    for bucket in args.bucket:
        emulator.create_bucket(bucket)
    buckets = ", ".join(args.bucket) or "no bucket"
    print(f"S3 emulator (moto) on {emulator.url}, {buckets}; in memory only", flush=True)

    try:
        asyncio.run(until_signalled())
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
