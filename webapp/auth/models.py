"""User accounts."""

from __future__ import annotations

import secrets
from datetime import datetime
from functools import cache

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.db_types import UTCDateTime, utcnow
from webapp.extensions import db


@cache
def _dummy_hash() -> str:
    """A hash to check against when the email is unknown, so both failures cost the same."""
    return generate_password_hash(secrets.token_urlsafe(16))


def _new_session_token() -> str:
    return secrets.token_urlsafe(24)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    # SQLite would otherwise hand the largest deleted id to the next account, and ids are
    # what keys are derived from and what audit rows name. PostgreSQL never reuses them.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Part of the login cookie: changing it signs the user out everywhere.
    session_token: Mapped[str] = mapped_column(String(64), default=_new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)  # scrypt
        self.session_token = _new_session_token()

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def __repr__(self) -> str:
        return f"<User {self.id}>"


def check_unknown_password(password: str) -> bool:
    """Spend the time of a real check; always False."""
    check_password_hash(_dummy_hash(), password)
    return False
