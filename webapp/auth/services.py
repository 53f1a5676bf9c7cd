"""Account operations: registration, authentication, password changes."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from webapp.audit.service import RequestInfo, record
from webapp.auth.models import User, check_unknown_password
from webapp.db_types import utcnow
from webapp.extensions import db

log = logging.getLogger(__name__)


class EmailTaken(Exception):
    """An account with this email exists."""


def find_user(email: str) -> User | None:
    return db.session.scalar(db.select(User).filter_by(email=email.strip().lower()))


def add_user(email: str, password: str, *, is_admin: bool = False) -> User:
    """Add an account to the current transaction; the caller records and commits."""
    user = User(email=email.strip().lower(), is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise EmailTaken(email) from None
    return user


def register(
    email: str, password: str, *, is_admin: bool = False, info: RequestInfo | None = None
) -> User:
    user = add_user(email, password, is_admin=is_admin)
    record("user.register", actor_id=user.id, info=info, details={"admin": is_admin})
    db.session.commit()
    return user


def authenticate(email: str, password: str, *, info: RequestInfo | None = None) -> User | None:
    """The user if the password is right; None otherwise, in about the same time."""
    user = find_user(email)
    ok = user.check_password(password) if user else check_unknown_password(password)
    if user is None or not ok:
        record(
            "auth.login",
            outcome="denied",
            subject_id=user.id if user else None,
            info=info,
            details={"reason": "bad_password" if user else "unknown_email"},
        )
        db.session.commit()
        log.warning(
            "login failed",
            extra={
                "event": "login_failed",
                "user_id": user.id if user else None,
                "ip": info.ip if info else None,
            },
        )
        return None
    user.last_login_at = utcnow()
    record("auth.login", actor_id=user.id, info=info)
    db.session.commit()
    return user


def logout(user: User, *, info: RequestInfo | None = None) -> None:
    record("auth.logout", actor_id=user.id, info=info)
    db.session.commit()


def change_password(user: User, current: str, new: str, *, info: RequestInfo | None = None) -> bool:
    if not user.check_password(current):
        record("auth.password_change", outcome="denied", actor_id=user.id, info=info)
        db.session.commit()
        return False
    user.set_password(new)
    record("auth.password_change", actor_id=user.id, info=info)
    db.session.commit()
    return True
