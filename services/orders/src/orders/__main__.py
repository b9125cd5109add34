"""`python -m orders [serve|migrate|downgrade REV|dlq list|dlq replay [--id ID]]`."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from chassis.cli import run_cli
from chassis.messaging import dlq
from orders.main import SERVICE, build_app
from orders.settings import OrdersSettings

SERVICE_DIR = Path(__file__).resolve().parents[2]


def main() -> None:
    run_cli(
        settings=OrdersSettings,
        app=lambda s: build_app(cast(OrdersSettings, s)),
        service_dir=SERVICE_DIR,
        database_url=lambda s: cast(OrdersSettings, s).database_url,
        commands=[dlq.command(SERVICE)],
    )


if __name__ == "__main__":
    main()
