"""`python -m worker [serve|migrate|downgrade REV|dlq list|dlq replay [--id ID]]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from chassis.cli import Command, run_cli
from chassis.messaging import dlq
from chassis.settings import ServiceSettings
from worker.main import SERVICE, build_app
from worker.settings import WorkerSettings

SERVICE_DIR = Path(__file__).resolve().parents[2]


async def _dlq(args: argparse.Namespace, settings: ServiceSettings) -> None:
    await dlq.run(args, cast(WorkerSettings, settings), SERVICE)


def main() -> None:
    run_cli(
        settings=WorkerSettings,
        app=lambda s: build_app(cast(WorkerSettings, s)),
        service_dir=SERVICE_DIR,
        database_url=lambda s: cast(WorkerSettings, s).database_url,
        commands=[
            Command(
                "dlq",
                "list the dead letters of the worker's consumer, or replay them",
                _dlq,
                dlq.add_arguments,
            )
        ],
    )


if __name__ == "__main__":
    main()
