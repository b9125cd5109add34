"""Queries of the auth schema; callers own the transaction (a UnitOfWork session)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert

from auth.models import RefreshToken, User
from chassis.db import Repository


class UserRepository(Repository):
    async def by_email(self, email: str) -> User | None:
        return await self._session.scalar(select(User).where(User.email == email))

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self._session.get(User, user_id)

    async def add(self, *, email: str, password_hash: str, now: datetime) -> User:
        """Insert and flush, so a duplicate e-mail surfaces here as an IntegrityError."""
        user = User(
            id=uuid.uuid4(),
            email=email,
            password_hash=password_hash,
            roles=[],
            created_at=now,
            updated_at=now,
        )
        self._session.add(user)
        await self._session.flush()
        return user

    async def set_password_hash(self, user: User, password_hash: str, now: datetime) -> None:
        user.password_hash = password_hash
        user.updated_at = now
        await self._session.flush()

    async def upsert_with_role(
        self, *, email: str, password_hash: str, role: str, now: datetime
    ) -> uuid.UUID:
        """Create the user, or reset its password and grant `role`; race-free in one statement."""
        values = insert(User).values(
            id=uuid.uuid4(),
            email=email,
            password_hash=password_hash,
            roles=[role],
            created_at=now,
            updated_at=now,
        )
        current = User.__table__.c
        statement = values.on_conflict_do_update(
            index_elements=[current.email],
            set_={
                "password_hash": values.excluded.password_hash,
                "roles": case(
                    (current.roles.any(role), current.roles),
                    else_=func.array_append(current.roles, role),
                ),
                "updated_at": values.excluded.updated_at,
            },
        ).returning(current.id)
        user_id: uuid.UUID = (await self._session.execute(statement)).scalar_one()
        return user_id


class RefreshTokenRepository(Repository):
    async def add(
        self,
        *,
        user_id: uuid.UUID,
        family_id: uuid.UUID,
        token_hash: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        self._session.add(
            RefreshToken(
                id=uuid.uuid4(),
                user_id=user_id,
                family_id=family_id,
                token_hash=token_hash,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self._session.flush()

    async def lock_by_hash(self, token_hash: str) -> RefreshToken | None:
        """The token row, locked until commit: concurrent refreshes of one token serialise here."""
        return await self._session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        )

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> None:
        await self._session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def family_of(self, token_hash: str, user_id: uuid.UUID) -> uuid.UUID | None:
        return await self._session.scalar(
            select(RefreshToken.family_id).where(
                RefreshToken.token_hash == token_hash, RefreshToken.user_id == user_id
            )
        )
