"""`python -m orders [serve|migrate|downgrade REV|dlq list|dlq replay [--id ID]]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

from chassis.cli import Command, run_cli
from chassis.messaging import dlq
from chassis.settings import ServiceSettings
from orders.main import SERVICE, build_app
from orders.settings import OrdersSettings

SERVICE_DIR = Path(__file__).resolve().parents[2]


async def _dlq(args: argparse.Namespace, settings: ServiceSettings) -> None:
    await dlq.run(args, cast(OrdersSettings, settings), SERVICE)


def main() -> None:
    run_cli(
        settings=OrdersSettings,
        app=lambda s: build_app(cast(OrdersSettings, s)),
        service_dir=SERVICE_DIR,
        database_url=lambda s: cast(OrdersSettings, s).database_url,
        commands=[
            Command(
                "dlq",
                "list the dead letters of the orders consumer, or replay them",
                _dlq,
                dlq.add_arguments,
            )
        ],
    )


if __name__ == "__main__":
    main()
