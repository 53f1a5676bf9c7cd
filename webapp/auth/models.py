"""User accounts."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from functools import cache

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.db_types import UTCDateTime, utcnow
from webapp.extensions import db


@cache
def _dummy_hash() -> str:
    """A hash to check against when the email is unknown, so both failures cost the same."""
    return generate_password_hash(secrets.token_urlsafe(16))


class User(UserMixin, db.Model):
    __tablename__ = "users"
    # SQLite would otherwise hand the largest deleted id to the next account, and ids are
    # what keys are derived from and what audit rows name. PostgreSQL never reuses them.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # The token of the login session this object was loaded for (not a column): the login
    # cookie names that session, so that logging out can end it alone.
    login_token = None
    # The password hash this object's password was checked against, or set to, in this
    # request (not a column): a login session opens only while the account still has it.
    proven_hash = None

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)  # scrypt
        self.proven_hash = self.password_hash

    def check_password(self, password: str) -> bool:
        checked = self.password_hash
        ok = check_password_hash(checked, password)
        if ok:
            self.proven_hash = checked
        return ok

    def get_id(self) -> str:
        if self.login_token is None:
            raise RuntimeError("open a login session (auth.services.open_session) first")
        return f"{self.id}:{self.login_token}"

    def __repr__(self) -> str:
        return f"<User {self.id}>"


def check_unknown_password(password: str) -> bool:
    """Spend the time of a real check; always False."""
    check_password_hash(_dummy_hash(), password)
    return False


class LoginSession(db.Model):
    """One signed-in browser. Its token is in the login cookie; logging out deletes the row.

    Only a SHA-256 of the token is stored: the table alone cannot be turned
    into a working cookie.
    """

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    def __repr__(self) -> str:
        return f"<LoginSession {self.id} user={self.user_id}>"


def lock_account(user_id: int) -> None:
    """Hold the account's row until the transaction ends, so that what one request decides
    from the account's tokens or sessions (a token limit, a revocation) is not changed under
    it by another, and a key being saved for the account (which holds a share of the row
    until it commits) is waited for. On PostgreSQL the row's full lock; on SQLite, where
    row locks do not exist, a write that changes nothing takes the database's write lock."""
    db.session.execute(db.select(User.id).where(User.id == user_id).with_for_update()).all()
    db.session.execute(
        db.update(User).where(User.id == user_id).values(email=User.email),
        execution_options={"synchronize_session": False},
    )


def session_is_live(user_id: int, login_token: str) -> bool:
    """Whether the login session named by ``login_token`` still exists (not signed out)."""
    query = db.select(LoginSession.id).where(
        LoginSession.user_id == user_id,
        LoginSession.token_hash == LoginSession.hash_token(login_token),
    )
    return db.session.scalar(query) is not None
