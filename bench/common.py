"""What every part of the benchmark shares: wrk runs, percentiles, processes' memory and CPU."""

from __future__ import annotations

import math
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of unsorted values (NaN for none)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class HttpLoad:
    """One closed-loop HTTP load: `connections` clients asking as fast as answers come."""

    label: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if match is None:
        msg = f"not a wrk duration: {text!r}"
        raise ValueError(msg)
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def wrk(
    label: str,
    url: str,
    *,
    connections: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> HttpLoad:
    """`wrk` (two threads) against a loopback URL for a bounded time, each request with
    `headers`."""
    binary = shutil.which("wrk")
    if binary is None:
        msg = "wrk is needed for the benchmark: apt-get install -y wrk"
        raise RuntimeError(msg)
    threads = min(2, connections)
    out = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            *(arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    return parse_wrk(label, connections, out)


def parse_wrk(label: str, connections: int, out: str) -> HttpLoad:
    """What `wrk --latency` printed: rate, median and 99th percentile, and every error."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    if rate is None or p50 is None or p99 is None:
        msg = f"unexpected wrk output:\n{out}"
        raise RuntimeError(msg)
    errors = sum(
        int(n)
        for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)
        + re.findall(r"Non-2xx or 3xx responses: (\d+)", out)
    )
    return HttpLoad(
        label, connections, float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), errors
    )


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def infrastructure_pids() -> dict[str, list[int]]:
    """The machine's Postgres, RabbitMQ and Redis processes (every backend and worker)."""
    groups: dict[str, list[int]] = {"postgres": [], "rabbitmq": [], "redis": []}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().split(b"\0")[0]
        except OSError:
            continue
        # "/usr/lib/postgresql/15/bin/postgres -D ...", "postgres: 15/main: fleet_orders ..."
        program = command.split(b" ")[0].split(b":")[0]
        name = os.path.basename(program.decode(errors="replace"))
        if name.startswith("postgres"):
            groups["postgres"].append(int(entry))
        elif name.startswith(("beam", "erl_child", "epmd", "inet_gethost")):
            groups["rabbitmq"].append(int(entry))
        elif name.startswith("redis-server"):
            groups["redis"].append(int(entry))
    return groups
