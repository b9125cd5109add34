"""What every service's `alembic/env.py` does: run migrations in the service's own schema.

Each service keeps its version table inside its schema, so two services never share
`alembic_version` and each can be migrated (and rolled back) alone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine


def run_env(*, metadata: MetaData, schema: str, url: str) -> None:
    """Body of an `env.py`: online async migrations, offline SQL when `--sql` is given."""
    if context.is_offline_mode():
        context.configure(
            url=url, target_metadata=metadata, version_table_schema=schema, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=False,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def online() -> None:
        # Bounded waits: a migration blocked behind a long transaction's lock fails after
        # 30 s instead of queueing every other query of the table behind it. The search path is
        # a connection setting, not a statement: no transaction is open when Alembic starts its
        # own, so a migration may step out of it (`autocommit_block`, e.g. for CREATE INDEX
        # CONCURRENTLY).
        engine = create_async_engine(
            url,
            connect_args={
                "timeout": 10,
                "server_settings": {"lock_timeout": "30s", "search_path": f'"{schema}"'},
            },
        )
        try:
            async with engine.connect() as conn:
                # The schema is created by the bootstrap (owned by the service's role); fail
                # loudly if it is missing rather than creating tables in `public`.
                missing = await conn.scalar(
                    text("SELECT to_regnamespace(:schema) IS NULL"), {"schema": schema}
                )
                await conn.commit()
                if missing:
                    msg = f"schema {schema!r} does not exist: bootstrap the database first"
                    raise RuntimeError(msg)
                await conn.run_sync(migrate)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(online())


def alembic_config(service_dir: Path, url: str | None = None) -> Config:
    config = Config(str(service_dir / "alembic.ini"))
    config.set_main_option("script_location", str(service_dir / "alembic"))
    if url is not None:
        config.attributes["database_url"] = url
    return config


class MigrationHistoryError(ValueError):
    """The revisions do not form one line from base to a single head."""


def revisions(service_dir: Path) -> list[str]:
    """The service's revision ids from the first to head, read from its scripts (no database).

    Fleet's histories are linear (one head, no merges), which is what makes "one step down, one
    step up" well defined; anything else is refused.
    """
    script = ScriptDirectory.from_config(alembic_config(service_dir))
    chain = list(script.walk_revisions())
    chain.reverse()
    previous: str | None = None
    for revision in chain:
        if revision.down_revision != previous:
            msg = (
                f"{service_dir.name}: revision {revision.revision} follows "
                f"{revision.down_revision!r}, not {previous!r}: the history is not one line"
            )
            raise MigrationHistoryError(msg)
        previous = revision.revision
    return [r.revision for r in chain]


def upgrade(service_dir: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service_dir, url), revision)


def downgrade(service_dir: Path, url: str, revision: str) -> None:
    command.downgrade(alembic_config(service_dir, url), revision)
