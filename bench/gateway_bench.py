"""Gateway overhead benchmark: one ~1 KB JSON document fetched directly from an upstream, through
the gateway on aiohttp's transport (production), and through the gateway on httpx's own transport
(the baseline that motivated the choice).

    .venv/bin/python bench/gateway_bench.py [--seconds N] [--connections C]

Everything runs on loopback: one uvicorn worker for the upstream, one gateway process at a time.
Load comes from `wrk` or `hey` when on PATH, else from a bounded asyncio load generator on aiohttp
(one process, so on a small machine it competes with the servers for CPU: compare ratios, not
absolute figures, across machines).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from fastapi import FastAPI
from starlette.responses import Response

BENCH_DIR = Path(__file__).resolve().parent
PATH = "/v1/products"

DOCUMENT = json.dumps(
    {
        "items": [
            {
                "id": f"00000000-0000-4000-8000-00000000000{i}",
                "sku": f"SKU-{i:04d}",
                "name": f"Sample product {i}",
                "description": "A product of the benchmark catalog.",
                "price_cents": 1999 + i,
                "currency": "EUR",
                "stock": 10 * i,
            }
            for i in range(5)
        ],
        "next_cursor": None,
    }
).encode()

upstream_app = FastAPI()


@upstream_app.get(PATH)
async def products() -> Response:
    return Response(DOCUMENT, media_type="application/json")


@dataclass(frozen=True, slots=True)
class Result:
    label: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    async def probe() -> bool:
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"{url} exited with {process.returncode} before serving"
            raise RuntimeError(msg)
        if asyncio.run(probe()):
            return
        time.sleep(0.1)
    msg = f"{url} did not come up within {timeout}s"
    raise RuntimeError(msg)


@contextmanager
def running(command: list[str], url: str, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(  # noqa: S603 - fixed argv of this interpreter
        command, env={**os.environ, **env}, stdout=subprocess.DEVNULL
    )
    try:
        wait_until_serving(url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def upstream(port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "--app-dir", str(BENCH_DIR), "gateway_bench:upstream_app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
        "--log-level", "warning", "--loop", "uvloop", "--http", "httptools",
    ]  # fmt: skip


def gateway_env(port: int, upstream_url: str, transport: str) -> dict[str, str]:
    return {
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "CATALOG_URL": upstream_url,
        "UPSTREAM_TRANSPORT": transport,
        # Per-request access lines are measured separately from proxying; keep them out.
        "LOG_LEVEL": "WARNING",
        # One client address sending everything: the per-IP limit would measure the limiter.
        "RATE_LIMIT_DEFAULT": "off",
        "FLEET_ENV": "local",
    }


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


async def asyncio_load(
    url: str, seconds: float, connections: int
) -> tuple[float, list[float], int]:
    """Closed-loop load: `connections` workers each send the next request when one finishes."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm_until = time.perf_counter() + min(1.0, seconds / 5)
        stop_at = warm_until + seconds

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop_at:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                if now >= warm_until:
                    if ok:
                        latencies.append(time.perf_counter() - now)
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
    return seconds, latencies, errors


def run_asyncio(label: str, url: str, seconds: float, connections: int) -> Result:
    elapsed, latencies, errors = asyncio.run(asyncio_load(url, seconds, connections))
    latencies.sort()
    return Result(
        label,
        len(latencies) / elapsed,
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.99) * 1000,
        errors,
    )


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(label: str, url: str, seconds: float, connections: int) -> Result:
    out = subprocess.run(  # noqa: S603
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def latency(pct: str) -> float:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(match[1]) * _UNITS_MS[match[2]] if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Result(
        label, float(rps[1]) if rps else 0.0, latency("50"), latency("99"),
        int(errors[1]) if errors else 0,
    )  # fmt: skip


def run_hey(label: str, url: str, seconds: float, connections: int) -> Result:
    out = subprocess.run(  # noqa: S603
        ["hey", "-z", f"{max(1, round(seconds))}s", "-c", str(connections), url],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def latency(pct: str) -> float:
        match = re.search(rf"{pct}% in ([\d.]+) secs", out)
        return float(match[1]) * 1000 if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    statuses = re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)
    errors = sum(int(n) for code, n in statuses if code != "200")
    return Result(label, float(rps[1]) if rps else 0.0, latency("50"), latency("99"), errors)


def load_tool() -> str:
    for tool in ("wrk", "hey"):
        if shutil.which(tool):
            return tool
    return "asyncio"


def measure(label: str, url: str, args: argparse.Namespace, tool: str) -> Result:
    runner = {"wrk": run_wrk, "hey": run_hey, "asyncio": run_asyncio}[tool]
    result = runner(label, url, args.seconds, args.connections)
    print(f"  measured {label}: {result.requests_per_second:,.0f} req/s", file=sys.stderr)
    return result


def report(results: list[Result], tool: str, args: argparse.Namespace) -> None:
    print(f"\nload: {tool}, {args.connections} connections, {args.seconds:g} s per run, "
          f"{len(DOCUMENT)} byte JSON document, {os.cpu_count()} CPUs\n")  # fmt: skip
    print(f"{'target':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for r in results:
        print(f"{r.label:<34}{r.requests_per_second:>10,.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}"
              f"{r.errors:>8}")  # fmt: skip
    direct, via_aiohttp, via_httpx = results

    def ratios(name: str, a: Result, b: Result) -> None:
        print(f"{name:<34}{a.requests_per_second / b.requests_per_second:>10.2f}"
              f"{a.p50_ms / b.p50_ms:>10.2f}{a.p99_ms / b.p99_ms:>10.2f}")  # fmt: skip

    print("\nratios")
    ratios("gateway(aiohttp) / direct", via_aiohttp, direct)
    ratios("gateway(httpx) / direct", via_httpx, direct)
    ratios("gateway aiohttp / httpx transport", via_aiohttp, via_httpx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    args = parser.parse_args()
    tool = load_tool()

    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    results: list[Result] = []
    with running(upstream(upstream_port), upstream_url + PATH, {}):
        results.append(measure("direct upstream", upstream_url + PATH, args, tool))
        for transport in ("aiohttp", "httpx"):
            port = free_port()
            url = f"http://127.0.0.1:{port}{PATH}"
            env = gateway_env(port, upstream_url, transport)
            with running([sys.executable, "-m", "gateway", "serve"], url, env):
                results.append(measure(f"gateway ({transport} transport)", url, args, tool))
    report(results, tool, args)


if __name__ == "__main__":
    main()
