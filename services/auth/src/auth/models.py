"""Persistence model of the auth schema: users and their refresh tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, Text, Uuid, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chassis.audit import AuditTrail
from chassis.db import schema_metadata
from chassis.messaging.outbox import Outbox

SCHEMA = "auth"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)


# `user.registered` leaves through the outbox, in the registration's own transaction; published
# rows are purged after `OUTBOX_RETENTION_DAYS` (the index for it: migration 0003).
outbox = Outbox(Base.metadata, source="/fleet/auth", retention_index=True, pending_index=True)
# Registrations, logins, refreshes, logouts and key rotations, each in its action's transaction
# (the table: migration 0005).
audit = AuditTrail(Base.metadata, service="auth")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lower_case"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Always stored lower-cased, so the unique constraint is case-insensitive in effect.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}", default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefreshToken(Base):
    """One opaque refresh token (stored as its SHA-256); a login starts a family, each refresh
    adds the next token of that family and marks the presented one used."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(User.id, ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
