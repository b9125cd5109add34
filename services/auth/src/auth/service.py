"""Use cases of the auth service: accounts, token grants, logout.

Each one is audited (`auth.models.audit`) in its own transaction; a refused password or refresh
token rolls nothing back worth keeping, so its failure is recorded in a transaction of its own.
No password, token or hash is ever part of a record; an unknown user's attempted name is not
either (it may be a password typed into the wrong field).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from auth.exceptions import EmailTakenError, InvalidGrantError
from auth.models import User, audit, outbox
from auth.passwords import Passwords
from auth.repository import RefreshTokenRepository, UserRepository
from auth.tokens import TokenIssuer, TokenPair, hash_refresh_token, new_refresh_token
from chassis.audit import ANONYMOUS
from chassis.db import UnitOfWork
from chassis.logging import get_logger
from chassis.security import ADMIN_ROLE
from chassis.tokens import InvalidTokenError
from contracts.audit import AuditOutcome
from contracts.events import UserRegisteredV1

EMAIL_CONSTRAINT = "uq_users_email"
BAD_CREDENTIALS = "The e-mail address or password is not correct."
BAD_REFRESH_TOKEN = "The refresh token is invalid, expired or revoked."  # noqa: S105

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Account:
    """A user as the use cases hand it out: a snapshot, usable after the transaction ended."""

    id: uuid.UUID
    email: str
    roles: list[str]
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(user.id, user.email, list(user.roles), user.created_at)


def _now() -> datetime:
    return datetime.now(UTC)


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def register(*, uow: UnitOfWork, passwords: Passwords, email: str, password: str) -> Account:
    email = normalise_email(email)
    password_hash = await passwords.hash(password)  # before the transaction: it holds no row
    async with uow:  # one transaction, so `user.registered` can join it through an outbox
        users = uow.repository(UserRepository)
        if await users.by_email(email) is not None:
            raise EmailTakenError("An account with this e-mail address already exists.")
        try:
            user = await users.add(email=email, password_hash=password_hash, now=_now())
        except IntegrityError as exc:
            if EMAIL_CONSTRAINT not in str(exc.orig):
                raise
            # A concurrent registration of the same address won the unique constraint.
            raise EmailTakenError("An account with this e-mail address already exists.") from None
        await outbox.add(
            uow.session, UserRegisteredV1(user_id=user.id, email=user.email), subject=str(user.id)
        )
        await audit.record(
            uow,
            actor=str(user.id),
            action="auth.register",
            target=user.id,
            details={"email": email},
        )
        await uow.commit()
        account = Account.of(user)
    log.info("user_registered", user_id=str(account.id))
    return account


async def _issue(
    uow: UnitOfWork, issuer: TokenIssuer, user: User, *, family_id: uuid.UUID, now: datetime
) -> TokenPair:
    refresh_token = new_refresh_token()
    await uow.repository(RefreshTokenRepository).add(
        user_id=user.id,
        family_id=family_id,
        token_hash=hash_refresh_token(refresh_token),
        now=now,
        expires_at=now + issuer.refresh_ttl,
    )
    access_token = issuer.access_token(subject=str(user.id), roles=user.roles, now=now)
    return TokenPair(access_token, issuer.access_ttl_seconds, refresh_token)


async def password_grant(
    *, uow: UnitOfWork, passwords: Passwords, issuer: TokenIssuer, username: str, password: str
) -> TokenPair:
    """Unknown user and wrong password fail alike, and both spend one Argon2 verification."""
    async with uow:  # short: no connection is held while Argon2 runs
        user = await uow.repository(UserRepository).by_email(normalise_email(username))
        user_id, stored_hash = (user.id, user.password_hash) if user else (None, None)
    verified = await passwords.verify(stored_hash, password)
    if user_id is None or stored_hash is None or not verified:
        await audit.record_alone(
            uow,
            actor=ANONYMOUS if user_id is None else str(user_id),
            action="auth.login",
            target=user_id,
            details={"reason": "unknown_user" if user_id is None else "wrong_password"},
        )
        raise InvalidGrantError(BAD_CREDENTIALS)
    new_hash = await passwords.hash(password) if passwords.needs_rehash(stored_hash) else None
    async with uow:
        users = uow.repository(UserRepository)
        user = await users.get(user_id)
        if user is None:
            raise InvalidGrantError(BAD_CREDENTIALS)
        now = _now()
        if new_hash is not None and user.password_hash == stored_hash:
            await users.set_password_hash(user, new_hash, now)
        family_id = uuid.uuid4()
        pair = await _issue(uow, issuer, user, family_id=family_id, now=now)
        await audit.record(
            uow,
            actor=str(user.id),
            action="auth.login",
            target=user.id,
            details={"family_id": str(family_id)},
        )
        await uow.commit()
    return pair


async def refresh_grant(*, uow: UnitOfWork, issuer: TokenIssuer, refresh_token: str) -> TokenPair:
    """Rotate a refresh token; a used or revoked one is a replay and revokes its whole family."""
    async with uow:
        tokens = uow.repository(RefreshTokenRepository)
        now = _now()
        presented = await tokens.lock_by_hash(hash_refresh_token(refresh_token))
        if presented is None:
            refused: tuple[uuid.UUID | None, str] = (None, "unknown_token")
        elif presented.used_at is not None or presented.revoked_at is not None:
            await tokens.revoke_family(presented.family_id, now)
            await audit.record(
                uow,
                actor=str(presented.user_id),
                action="auth.token.reuse_detected",
                target=presented.user_id,
                outcome=AuditOutcome.FAILURE,
                details={"family_id": str(presented.family_id), "family_revoked": True},
            )
            await uow.commit()
            log.warning(
                "refresh_token_reuse",
                user_id=str(presented.user_id),
                family_id=str(presented.family_id),
            )
            raise InvalidGrantError(BAD_REFRESH_TOKEN)
        elif presented.expires_at <= now:
            refused = (presented.user_id, "expired_token")
        else:
            user = await uow.repository(UserRepository).get(presented.user_id)
            if user is None:
                raise InvalidGrantError(BAD_REFRESH_TOKEN)
            presented.used_at = now
            pair = await _issue(uow, issuer, user, family_id=presented.family_id, now=now)
            await audit.record(
                uow,
                actor=str(user.id),
                action="auth.token.refresh",
                target=user.id,
                details={"family_id": str(presented.family_id)},
            )
            await uow.commit()
            return pair
    user_id, reason = refused
    await audit.record_alone(
        uow,
        actor=ANONYMOUS if user_id is None else str(user_id),
        action="auth.token.refresh",
        target=user_id,
        details={"reason": reason},
    )
    raise InvalidGrantError(BAD_REFRESH_TOKEN)


def _user_id(subject: str) -> uuid.UUID:
    try:
        return uuid.UUID(subject)
    except ValueError:
        raise InvalidTokenError("Token subject is not a user.") from None


async def logout(*, uow: UnitOfWork, subject: str, refresh_token: str) -> None:
    """Revoke the token's family if it is the caller's; anything else is silently a no-op."""
    user_id = _user_id(subject)
    async with uow:
        tokens = uow.repository(RefreshTokenRepository)
        family_id = await tokens.family_of(hash_refresh_token(refresh_token), user_id)
        if family_id is not None:
            await tokens.revoke_family(family_id, _now())
        details = {"family_id": str(family_id)} if family_id else {"revoked": False}
        await audit.record(
            uow, actor=subject, action="auth.logout", target=user_id, details=details
        )
        await uow.commit()


async def current_user(*, uow: UnitOfWork, subject: str) -> Account:
    async with uow:
        user = await uow.repository(UserRepository).get(_user_id(subject))
        if user is None:
            raise InvalidTokenError("The token's user no longer exists.")
        return Account.of(user)


async def seed_admin(
    *, uow: UnitOfWork, passwords: Passwords, email: str, password: str
) -> uuid.UUID:
    """Create the admin, or reset its password and make sure it has the admin role."""
    password_hash = await passwords.hash(password)
    async with uow:
        user_id = await uow.repository(UserRepository).upsert_with_role(
            email=normalise_email(email), password_hash=password_hash, role=ADMIN_ROLE, now=_now()
        )
        await uow.commit()
    return user_id
