"""`python -m catalog [serve|migrate|downgrade REV|seed|dlq list|dlq replay [--id ID]]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from catalog.main import SERVICE, build_app
from catalog.seed import seed_catalog
from catalog.settings import CatalogSettings
from chassis.cli import Command, run_cli
from chassis.messaging import dlq
from chassis.settings import ServiceSettings

SERVICE_DIR = Path(__file__).resolve().parents[2]


async def _seed(_: argparse.Namespace, settings: ServiceSettings) -> None:
    await seed_catalog(cast(CatalogSettings, settings))


def main() -> None:
    run_cli(
        settings=CatalogSettings,
        app=build_app,
        service_dir=SERVICE_DIR,
        commands=[
            Command("seed", "insert the sample catalog (idempotent)", _seed),
            dlq.command(SERVICE),
        ],
    )


if __name__ == "__main__":
    main()
