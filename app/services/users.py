"""Users and API tokens: tokens are random, shown once, and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.models import ApiToken, User
from app.models.base import utcnow

TOKEN_PREFIX = "lsk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class UserExistsError(ValueError):
    """A user with that name exists already."""


class UnknownUserError(LookupError):
    """No user has that name."""


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (tokens have 256 bits of entropy, so no salt or KDF is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class UnknownTokenError(LookupError):
    """No token has that id."""


def create_user(session: Session, name: str, is_admin: bool = False) -> User:
    """Create and commit a user named ``name`` (an admin when ``is_admin``)."""
    name = name.strip()
    if not name:
        raise ValueError("user name must not be empty")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UserExistsError(f"user {name!r} exists already")
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    session.commit()
    return user


def _user_named(session: Session, user_name: str) -> User:
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        raise UnknownUserError(f"no user named {user_name!r}")
    return user


def create_token(session: Session, user_name: str, expires_in_days: float | None = None) -> str:
    """Create an API token for ``user_name`` (expiring after ``expires_in_days`` if given), commit its hash,
    and return the token itself (shown once)."""
    user = _user_named(session, user_name)
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValueError("--expires-in must be a positive number of days")
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days is not None else None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:8], expires_at=expires_at))
    session.commit()
    return token


def list_tokens(session: Session, user_name: str) -> list[ApiToken]:
    """A user's tokens, oldest first (the rows hold only hashes and an 8-character prefix)."""
    user = _user_named(session, user_name)
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Mark token ``token_id`` revoked (idempotent: the first revocation time is kept) and commit."""
    api_token = session.get(ApiToken, token_id)
    if api_token is None:
        raise UnknownTokenError(f"no token with id {token_id}")
    if api_token.revoked_at is None:
        api_token.revoked_at = utcnow()
        session.commit()
    return api_token


def _active_tokens():
    """Tokens that are neither revoked nor expired, with their users."""
    return (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
            .where(ApiToken.revoked_at.is_(None),
                   or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > func.now())))


def _record_use(session: Session, api_token: ApiToken) -> None:
    now = utcnow()
    # record use at most once a minute: a client polling a task must not cost a write per request
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        session.commit()


def active_token(session: Session, token: str) -> tuple[ApiToken, User] | None:
    """The unrevoked, unexpired token row for the secret ``token`` and its user, or None (records its use)."""
    if not token:
        return None
    row = session.execute(_active_tokens().where(ApiToken.token_hash == hash_token(token))).first()
    if row is None:
        return None
    api_token, user = row
    _record_use(session, api_token)
    return api_token, user


def user_for_token(session: Session, token: str) -> User | None:
    """The user owning an unrevoked, unexpired ``token``, or None."""
    found = active_token(session, token)
    return found[1] if found is not None else None


def user_for_token_id(session: Session, token_id: int) -> User | None:
    """The user of token ``token_id`` while it is unrevoked and unexpired, or None (the workspace's session holds
    the id of the token its reviewer signed in with, so revoking the token ends the session)."""
    row = session.execute(_active_tokens().where(ApiToken.id == token_id)).first()
    if row is None:
        return None
    _record_use(session, row[0])
    return row[1]
