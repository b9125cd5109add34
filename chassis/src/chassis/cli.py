"""The command line every service shares: `python -m <svc> [serve|migrate|downgrade REV|...]`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI

from chassis.app import serve
from chassis.logging import configure_logging
from chassis.settings import ServiceSettings, WithDatabase

S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True, slots=True)
class Command:
    """A service-specific subcommand; `run` gets the parsed arguments and the settings."""

    name: str
    help: str
    run: Callable[[argparse.Namespace, ServiceSettings], Coroutine[Any, Any, None]]
    arguments: Callable[[argparse.ArgumentParser], None] = field(default=lambda _: None)


def run_cli(
    *,
    settings: Callable[[], S],
    app: Callable[[S], FastAPI],
    service_dir: Path | None,
    commands: Sequence[Command] = (),
    argv: Sequence[str] | None = None,
) -> None:
    """The service's command line; `service_dir` holds its `alembic.ini` (None: no database,
    no migration commands), which migrate against the settings' `DATABASE_URL`."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP service (default)")
    if service_dir is not None:
        sub.add_parser("migrate", help="apply database migrations up to head")
        down = sub.add_parser("downgrade", help="roll database migrations back to a revision")
        down.add_argument("revision")
    for command in commands:
        command.arguments(sub.add_parser(command.name, help=command.help))
    args = parser.parse_args(argv)

    config = settings()
    configure_logging(
        service=config.service_name, version=config.service_version, level=config.log_level
    )
    name = args.command or "serve"
    if name == "serve":
        serve(app(config), config)
        return
    if name in ("migrate", "downgrade"):
        # Imported here: Alembic is ~10 MB of memory a serving process never needs.
        from chassis.migrations import downgrade, upgrade  # noqa: PLC0415

        assert service_dir is not None
        assert isinstance(config, WithDatabase)
        url = config.database_url
        if name == "migrate":
            upgrade(service_dir, url)
        else:
            downgrade(service_dir, url, args.revision)
        return
    chosen = next(c for c in commands if c.name == name)
    asyncio.run(chosen.run(args, config))
