"""Debian's Prometheus server scraping the local fleet and evaluating the SLO rules
(`fleetctl observe`, `make observe`, and the tests that query a real Prometheus).

Each service of the stack is one scrape job named after it (`job="gateway"` … `job="worker"`, what
the dashboards and SLO rules select), on the port the stack gives it: the same ports serve the
fleet `make up` runs as processes and the one `make up-containers` runs as containers. The rules
are the committed PrometheusRules' groups written as one rules file (`fleet_slo.rules_file`).
Configuration, rules file and storage (`metrics2/`, as Debian's package names it under
/var/lib/prometheus) live in one directory, by default `<state dir>/prometheus`. Debian builds the
classic web UI: `/` leads to `/classic/graph`, and `/classic/alerts`, `/classic/rules` and
`/classic/targets` show the alerts, rules and scrape targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from fleet_slo.rules_file import write_rules_file
from fleet_slo.runbooks import RULES_DIR
from fleetctl.stack import ROOT, SERVICES, Stack

DEFAULT_PORT = 9090
DEFAULT_INTERVAL_SECONDS = 15.0
# Prometheus' own default bound on one scrape; a scrape may not outlast its interval either.
SCRAPE_TIMEOUT_SECONDS = 10.0


class PrometheusFailedError(RuntimeError):
    """Prometheus is missing, exited, or was not ready in time."""


def prometheus_binary() -> str | None:
    """The prometheus `make deploy-tools` unpacks into the virtual environment, else one on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return shutil.which("prometheus", path=venv_bin) or shutil.which("prometheus")


def _web_assets(binary: str) -> Path | None:
    """The web UI's templates and static files unpacked beside the binary (Debian's binary looks
    for them in /usr/share/prometheus/web, which only an installed package provides)."""
    assets = Path(binary).resolve().parent.parent / "share" / "prometheus" / "web"
    return assets if (assets / "templates").is_dir() else None


def _duration(seconds: float) -> str:
    """A Prometheus duration: whole milliseconds (`1s`, `500ms`, `15s`)."""
    millis = math.ceil(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


@dataclass(frozen=True)
class Observation:
    """One Prometheus over one stack: where it listens, how often it scrapes and evaluates the
    rules, where it keeps its files."""

    stack: Stack
    port: int = DEFAULT_PORT
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    directory: Path | None = None  # None: <state dir>/prometheus
    rules_dir: Path = ROOT / RULES_DIR

    @property
    def home(self) -> Path:
        return self.directory or self.stack.state_dir / "prometheus"

    @property
    def config_file(self) -> Path:
        return self.home / "prometheus.yml"

    @property
    def rules_file(self) -> Path:
        return self.home / "slo-rules.yml"

    @property
    def storage(self) -> Path:
        return self.home / "metrics2"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def targets(self) -> dict[str, str]:
        """Scrape job → target (`host:port`) of every service of the stack."""
        return {s.name: f"127.0.0.1:{self.stack.port(s.name)}" for s in SERVICES}

    def config(self) -> dict[str, Any]:
        interval = _duration(self.interval_seconds)
        return {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": _duration(min(self.interval_seconds, SCRAPE_TIMEOUT_SECONDS)),
                "evaluation_interval": interval,
            },
            "rule_files": [str(self.rules_file)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in self.targets().items()
            ],
        }

    def prepare(self, binary: str) -> list[str]:
        """Write the rules file and the configuration; the command line that runs Prometheus."""
        self.storage.mkdir(parents=True, exist_ok=True)
        write_rules_file(self.rules_dir, self.rules_file)
        self.config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.storage}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        assets = _web_assets(binary)
        if assets is not None:
            command.append(f"--web.local-assets={assets}/")
        return command


@dataclass
class RunningPrometheus:
    observation: Observation
    process: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return self.observation.url

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until `/-/ready` answers 200; fail at once if the process exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                if self.process.returncode is not None:
                    msg = (
                        f"prometheus exited with code {self.process.returncode} before it was ready"
                    )
                    raise PrometheusFailedError(msg)
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                        return
                if loop.time() > deadline:
                    msg = f"prometheus not ready at {self.url} after {timeout:.0f} s"
                    raise PrometheusFailedError(msg)
                await asyncio.sleep(0.1)

    async def stop(self, grace: float = 10.0) -> int:
        """SIGTERM (Prometheus flushes its head block and exits), SIGKILL after `grace` seconds."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
        return await self.process.wait()


@contextlib.asynccontextmanager
async def running(
    observation: Observation,
    *,
    output: IO[Any] | int | None = None,
    ready_timeout: float = 30.0,
) -> AsyncIterator[RunningPrometheus]:
    """Prometheus running for `observation` and ready while the block lasts; its log (stderr)
    goes to `output` (default: this process's stderr). Stopped when the block ends."""
    binary = prometheus_binary()
    if binary is None:
        msg = "prometheus is missing: run `make deploy-tools` (Debian's prometheus package)"
        raise PrometheusFailedError(msg)
    command = observation.prepare(binary)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        # Its own session: a Ctrl-C reaches only the caller, which stops it.
        start_new_session=True,
    )
    server = RunningPrometheus(observation, process)
    try:
        await server.wait_ready(ready_timeout)
        yield server
    finally:
        await server.stop()
