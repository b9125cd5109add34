"""The audit trail's table as `chassis.audit` creates it (auth's, migrated): append-only but for
the retention purge, and refusing a detail that would hold a secret. Ages are set in SQL
(`now() - interval`), never waited for."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.models import audit
from auth.retention import purger
from auth.settings import AuthSettings
from chassis.audit import SecretInAuditError
from chassis.db import UnitOfWork, create_engine, session_factory

pytestmark = pytest.mark.integration

AUDIT = audit.table


@pytest.fixture
async def engine(auth_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(auth_database_url)
    yield engine
    await engine.dispose()


async def _add(engine: AsyncEngine, *, age: timedelta) -> uuid.UUID:
    record_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(AUDIT).values(
                id=record_id,
                created_at=sa.func.now() - age,
                actor="anonymous",
                action="test.trail",
                outcome="success",
            )
        )
    return record_id


async def _exists(engine: AsyncEngine, record_id: uuid.UUID) -> bool:
    async with engine.connect() as conn:
        return bool(await conn.scalar(sa.select(sa.func.count()).where(AUDIT.c.id == record_id)))


async def test_a_record_cannot_be_changed(engine: AsyncEngine) -> None:
    record_id = await _add(engine, age=timedelta(days=400))

    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.update(AUDIT).where(AUDIT.c.id == record_id).values(actor="x"))


async def test_a_young_record_cannot_be_deleted(engine: AsyncEngine) -> None:
    record_id = await _add(engine, age=timedelta(hours=1))

    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.delete(AUDIT).where(AUDIT.c.id == record_id))
    assert await _exists(engine, record_id)


async def test_the_table_cannot_be_truncated(engine: AsyncEngine) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.text("TRUNCATE auth.audit_log"))


async def test_the_retention_purge_deletes_records_past_audit_retention_days_only(
    engine: AsyncEngine, settings: AuthSettings
) -> None:
    kept_settings = settings.model_copy(update={"audit_retention_days": 30})
    expired = await _add(engine, age=timedelta(days=31))
    kept = await _add(engine, age=timedelta(days=29))

    await purger(engine, kept_settings).purge()

    assert not await _exists(engine, expired)
    assert await _exists(engine, kept)


@pytest.mark.parametrize("name", ["password", "refresh_token", "client_secret", "password_hash"])
async def test_a_detail_named_like_a_secret_is_refused_before_anything_is_written(
    engine: AsyncEngine, name: str
) -> None:
    uow = UnitOfWork(session_factory(engine))

    with pytest.raises(SecretInAuditError):
        await audit.record_alone(
            uow, actor="anonymous", action="test.secret", details={"nested": {name: "x"}}
        )

    async with engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).where(AUDIT.c.action == "test.secret"))
    assert count == 0
