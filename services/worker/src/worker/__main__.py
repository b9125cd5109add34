"""`python -m worker [serve|migrate|downgrade REV|dlq list|dlq replay [--id ID]]`."""

from __future__ import annotations

from pathlib import Path

from chassis.cli import run_cli
from chassis.messaging import dlq
from worker.main import SERVICE, build_app
from worker.settings import WorkerSettings

SERVICE_DIR = Path(__file__).resolve().parents[2]


def main() -> None:
    run_cli(
        settings=WorkerSettings,
        app=build_app,
        service_dir=SERVICE_DIR,
        commands=[dlq.command(SERVICE)],
    )


if __name__ == "__main__":
    main()
