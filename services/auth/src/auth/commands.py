"""Service-specific CLI commands: `keys ensure|rotate` and `seed-admin`.

A key rotation is audited (`auth.signing_key.rotate`, by the `operator`), its failure too: the
key is a file, not a row, so the record is written in a transaction of its own once the file is.
"""

from __future__ import annotations

import argparse
from typing import cast

from auth import service
from auth.keyfiles import KeyRotationError, ensure_key, rotate_key
from auth.models import audit
from auth.passwords import Passwords
from auth.settings import AuthSettings
from chassis.audit import OPERATOR
from chassis.cli import Command
from chassis.db import UnitOfWork, create_engine, session_factory
from chassis.logging import get_logger
from chassis.settings import ServiceSettings
from contracts.audit import AuditOutcome

log = get_logger(__name__)


def _keys_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["ensure", "rotate"],
        help="ensure: create the first key if there is none; rotate: add a new active key",
    )


async def _audit_rotation(
    settings: AuthSettings, *, kid: str | None, outcome: AuditOutcome, details: dict[str, str]
) -> None:
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        await audit.record_alone(
            UnitOfWork(session_factory(engine)),
            actor=OPERATOR,
            action="auth.signing_key.rotate",
            target=kid,
            outcome=outcome,
            details=details,
        )
    finally:
        await engine.dispose()


async def _keys(args: argparse.Namespace, config: ServiceSettings) -> None:
    settings = cast(AuthSettings, config)
    directory = settings.jwt_keys_dir
    if args.action == "ensure":
        kid = ensure_key(directory)
        log.info("signing_key_ensured", kid=kid, created=kid is not None, directory=str(directory))
    else:
        try:
            kid = rotate_key(directory)
        except KeyRotationError as exc:
            await _audit_rotation(
                settings, kid=None, outcome=AuditOutcome.FAILURE, details={"reason": str(exc)}
            )
            raise SystemExit(f"keys rotate: {exc}") from None
        await _audit_rotation(settings, kid=kid, outcome=AuditOutcome.SUCCESS, details={})
        log.info(
            "signing_key_rotated",
            kid=kid,
            directory=str(directory),
            note="restart auth to sign with it; remove old keys after ACCESS_TOKEN_TTL_SECONDS",
        )


async def _seed_admin(_: argparse.Namespace, config: ServiceSettings) -> None:
    settings = cast(AuthSettings, config)
    engine = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    try:
        user_id = await service.seed_admin(
            uow=UnitOfWork(session_factory(engine)),
            passwords=Passwords(),
            email=settings.fleet_admin_email,
            password=settings.fleet_admin_password.get_secret_value(),
        )
    finally:
        await engine.dispose()
    log.info("admin_seeded", user_id=str(user_id))


COMMANDS = (
    Command("keys", "manage the JWT signing keys in JWT_KEYS_DIR", _keys, _keys_arguments),
    Command("seed-admin", "create or update FLEET_ADMIN_EMAIL with the admin role", _seed_admin),
)
