"""Users and API tokens: tokens are random, shown once, and stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
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


def create_user(session: Session, name: str) -> User:
    """Create and commit a user named ``name``."""
    name = name.strip()
    if not name:
        raise ValueError("user name must not be empty")
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UserExistsError(f"user {name!r} exists already")
    user = User(name=name)
    session.add(user)
    session.commit()
    return user


def create_token(session: Session, user_name: str) -> str:
    """Create an API token for ``user_name``, commit its hash, and return the token itself (shown once)."""
    user = session.scalar(select(User).where(User.name == user_name))
    if user is None:
        raise UnknownUserError(f"no user named {user_name!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), prefix=token[:8]))
    session.commit()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The user owning an unrevoked ``token``, or None."""
    if not token:
        return None
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    api_token, user = row
    now = utcnow()
    # record use at most once a minute: a client polling a task must not cost a write per request
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        session.commit()
    return user
