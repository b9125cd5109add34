"""The worker's read model of users: where a user id's e-mails go."""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert

from chassis.db import Repository
from chassis.sql import qualified, sql
from worker.models import User


class UnknownUserError(Exception):
    """An event names a user whose `user.registered` has not been handled (yet).

    Deliberately not a PermanentError: events of different types may overtake each other, so
    the consumer retries it after growing delays and dead-letters it only after its budget.
    """


_USERS = qualified(User.__table__)  # type: ignore[arg-type]
_EMAIL_OF = f"SELECT email FROM {_USERS} WHERE user_id = $1"  # noqa: S608 - a model's table


class UserRepository(Repository):
    """The worker's read model of users (fed by user.registered): where to mail a user."""

    async def remember(self, *, user_id: uuid.UUID, email: str) -> None:
        statement = insert(User).values(user_id=user_id, email=email)
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=[User.user_id], set_={"email": statement.excluded.email}
            )
        )

    async def email_of(self, user_id: uuid.UUID) -> str:
        email: str | None = await (await sql(self._session)).fetchval(_EMAIL_OF, user_id)
        if email is None:
            msg = f"no user.registered seen for user {user_id}"
            raise UnknownUserError(msg)
        return email
