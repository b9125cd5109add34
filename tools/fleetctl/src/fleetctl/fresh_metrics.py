"""What a freshly started service exports at `/metrics`, before it served anything.

Prometheus metrics live in the process's registry, which every test of a session shares: a series
that another test created would hide a missing initialisation. So the service is built from the
test's settings in a new Python process, started (its lifespan: pools, consumers, loops), scraped
once and stopped.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

SettingsT = TypeVar("SettingsT")

# Run in the new process: the pickled (build_app, settings) on stdin, the scrape to argv[1].
_SCRAPE = """
import asyncio, pickle, sys
from pathlib import Path
from fleetctl.testing import app_client

build_app, settings = pickle.loads(sys.stdin.buffer.read())

async def scrape() -> str:
    async with app_client(build_app(settings)) as client:
        response = await client.get("/metrics")
        response.raise_for_status()
        return response.text

Path(sys.argv[1]).write_text(asyncio.run(scrape()))
"""


@dataclass(frozen=True)
class Scrape:
    """The samples of one scrape: (sample name, its labels) -> value."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample `name{labels}` (all of its labels), None when it is not exported."""
        return self.samples.get((name, frozenset(labels.items())))


def fresh_metrics(
    build_app: Callable[[SettingsT], Any], settings: SettingsT, *, timeout: float = 60.0
) -> Scrape:
    """`/metrics` of `build_app(settings)` started in a new process (`build_app` is imported
    there by name, so it must be a module-level function)."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "metrics.txt"
        started = subprocess.run(
            [sys.executable, "-c", _SCRAPE, str(out)],
            input=pickle.dumps((build_app, settings)),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if started.returncode != 0:
            msg = f"the service did not start and answer /metrics:\n{started.stderr.decode()}"
            raise AssertionError(msg)
        text = out.read_text()
    return Scrape(
        {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
    )
