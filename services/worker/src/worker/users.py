"""The worker's read model of users: where a user id's e-mails go."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from worker.models import User


class UnknownUser(Exception):
    """An event names a user whose `user.registered` has not been handled (yet).

    Deliberately not a PermanentError: events of different types may overtake each other, so
    the consumer retries it after growing delays and dead-letters it only after its budget.
    """


async def remember(session: AsyncSession, *, user_id: uuid.UUID, email: str) -> None:
    statement = insert(User).values(user_id=user_id, email=email)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[User.user_id], set_={"email": statement.excluded.email}
        )
    )


async def email_of(session: AsyncSession, user_id: uuid.UUID) -> str:
    email = await session.scalar(select(User.email).where(User.user_id == user_id))
    if email is None:
        msg = f"no user.registered seen for user {user_id}"
        raise UnknownUser(msg)
    return email
