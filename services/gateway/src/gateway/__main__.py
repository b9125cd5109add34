from __future__ import annotations

from chassis.cli import run_cli
from gateway.main import build_app
from gateway.settings import GatewaySettings


def main() -> None:
    run_cli(
        settings=GatewaySettings,
        app=build_app,
        service_dir=None,
    )


if __name__ == "__main__":
    main()
