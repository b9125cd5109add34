from __future__ import annotations

from pathlib import Path
from typing import cast

from auth.commands import COMMANDS
from auth.main import build_app
from auth.settings import AuthSettings
from chassis.cli import run_cli

SERVICE_DIR = Path(__file__).resolve().parents[2]


def main() -> None:
    run_cli(
        settings=AuthSettings,
        app=lambda s: build_app(cast(AuthSettings, s)),
        service_dir=SERVICE_DIR,
        database_url=lambda s: cast(AuthSettings, s).database_url,
        commands=COMMANDS,
    )


if __name__ == "__main__":
    main()
