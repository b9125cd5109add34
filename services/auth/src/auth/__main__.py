from __future__ import annotations

from pathlib import Path

from auth.commands import COMMANDS
from auth.main import build_app
from auth.settings import AuthSettings
from chassis.cli import run_cli

SERVICE_DIR = Path(__file__).resolve().parents[2]


def main() -> None:
    run_cli(
        settings=AuthSettings,
        app=build_app,
        service_dir=SERVICE_DIR,
        commands=COMMANDS,
    )


if __name__ == "__main__":
    main()
