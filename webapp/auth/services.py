"""Account operations: registration, authentication, password changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_login.config import COOKIE_DURATION
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from webapp import monitoring
from webapp.audit.service import RequestInfo, audited, record
from webapp.auth.models import LoginSession, User, check_unknown_password, lock_account
from webapp.db_types import utcnow, whole_number
from webapp.extensions import db
from webapp.tokens import service as tokens

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
    """Create an account; a write that fails leaves a ``failed`` row, a taken email none."""
    details = {"admin": is_admin}
    with audited("user.register", refusals=(EmailTaken,), info=info, details=details):
        user = add_user(email, password, is_admin=is_admin)
        record("user.register", actor_id=user.id, info=info, details=details)
    return user


def authenticate(email: str, password: str, *, info: RequestInfo | None = None) -> User | None:
    """The user if the password is right; None otherwise, in about the same time."""
    user = find_user(email)
    ok = user.check_password(password) if user else check_unknown_password(password)
    if user is None or not ok:
        reason = "bad_password" if user else "unknown_email"
        subject_id = user.id if user else None
        record(
            "auth.login",
            outcome="denied",
            subject_id=subject_id,
            info=info,
            details={"reason": reason},
        )
        db.session.commit()
        monitoring.login_failed(subject_id, info.ip if info else None, reason)
        return None
    with audited("auth.login", actor_id=user.id, info=info):
        user.last_login_at = utcnow()
        record("auth.login", actor_id=user.id, info=info)
    return user


def confirm_password(user: User, password: str, *, info: RequestInfo | None = None) -> bool:
    """Whether ``password`` is ``user``'s, asked of a session that "Keep me signed in" brought
    back before it may create access tokens; each answer is on the record."""
    if not user.check_password(password):
        details = {"reason": "bad_password"}
        record("auth.confirm", outcome="denied", actor_id=user.id, info=info, details=details)
        db.session.commit()
        monitoring.security_event(
            "auth.confirm_failed",
            f"password confirmation failed for user {user.id}",
            level=logging.WARNING,
            user_id=user.id,
            ip=info.ip if info else None,
            reason="bad_password",
        )
        return False
    with audited("auth.confirm", actor_id=user.id, info=info):
        record("auth.confirm", actor_id=user.id, info=info)
    return True


def session_lifetime() -> timedelta:
    """How long a login session lasts at most: as long as a remember-me cookie."""
    duration = current_app.config.get("REMEMBER_COOKIE_DURATION", COOKIE_DURATION)
    return duration if isinstance(duration, timedelta) else timedelta(seconds=int(duration))


def open_session(user: User, *, info: RequestInfo | None = None) -> bool:
    """Start a login session for ``user``; ``user.get_id()`` then names it for the cookie.

    False, with nothing opened and a refused ``auth.login`` on the record, when the account
    was deleted or its password changed since this request checked (or set) it: a sign-in
    that raced a password change would otherwise outlive the change that ended every other
    session.
    """
    user_id = sa_inspect(user).identity[0]  # read without a reload: the row may be gone
    proven = user.proven_hash
    lock_account(user_id)  # a password change in progress commits first, or waits for this
    current = db.session.scalar(db.select(User.password_hash).where(User.id == user_id))
    if proven is None or current != proven:
        db.session.rollback()
        reason = "account_deleted" if current is None else "password_changed"
        record(
            "auth.login",
            outcome="denied",
            subject_id=None if current is None else user_id,
            info=info,
            details={"reason": reason},
        )
        db.session.commit()
        return False
    token = LoginSession.new_token()
    # The user's sessions that have outlived any cookie end here instead of piling up.
    db.session.execute(
        db.delete(LoginSession).where(
            LoginSession.user_id == user_id,
            LoginSession.created_at < utcnow() - session_lifetime(),
        )
    )
    db.session.add(LoginSession(user_id=user_id, token_hash=LoginSession.hash_token(token)))
    db.session.commit()
    user.login_token = token
    return True


#: The user of a live login session, looked up on every signed-in request. Built
#: once: a request only binds values, and SQLAlchemy reuses the compiled SQL.
_SESSION_USER = (
    db.select(User)
    .join(LoginSession, LoginSession.user_id == User.id)
    .where(
        User.id == db.bindparam("user_id"),
        LoginSession.token_hash == db.bindparam("token_hash"),
        LoginSession.created_at >= db.bindparam("since"),
    )
)


def load_session_user(cookie_id: str) -> User | None:
    """The user of a live login session named by a login or remember-me cookie, else None."""
    ident, _, token = cookie_id.partition(":")
    user_id = whole_number(ident)
    if user_id is None or not token:
        return None
    # Looked up by the token's hash, so comparing it in SQL reveals nothing by its timing.
    user = db.session.scalar(
        _SESSION_USER,
        {
            "user_id": user_id,
            "token_hash": LoginSession.hash_token(token),
            "since": utcnow() - session_lifetime(),
        },
    )
    if user is not None:
        user.login_token = token
    return user


def _end_sessions(user: User, *, only_current: bool) -> None:
    query = db.delete(LoginSession).where(LoginSession.user_id == user.id)
    if only_current:
        query = query.where(LoginSession.token_hash == LoginSession.hash_token(user.login_token))
    db.session.execute(query)


def logout(user: User, *, info: RequestInfo | None = None) -> None:
    """End this login session on the server: a copy of its cookie stops working too."""
    with audited("auth.logout", actor_id=user.id, info=info):
        if user.login_token is not None:  # None: signed in by an access token, not a session
            _end_sessions(user, only_current=True)
        record("auth.logout", actor_id=user.id, info=info)


@dataclass(frozen=True)
class PasswordChanged:
    tokens_revoked: int  # the access tokens that stopped working with the old password


def change_password(
    user: User,
    current: str,
    new: str,
    *,
    revoke_tokens: bool = False,
    info: RequestInfo | None = None,
) -> PasswordChanged | None:
    """Set a new password (None if ``current`` is wrong), and with ``revoke_tokens`` revoke
    every access token that still works, in the same transaction."""
    if not user.check_password(current):
        record("auth.password_change", outcome="denied", actor_id=user.id, info=info)
        db.session.commit()
        monitoring.security_event(
            "auth.password_change_denied",
            "password change refused: wrong current password",
            user_id=user.id,
            ip=info.ip if info else None,
            reason="bad_password",
        )
        return None
    with audited("auth.password_change", actor_id=user.id, info=info):
        lock_account(user.id)  # a token being created meanwhile is revoked too, not missed
        user.set_password(new)
        _end_sessions(user, only_current=False)  # the caller opens a new one for this browser
        revoked = []
        if revoke_tokens:
            revoked = tokens.revoke_working_tokens(user, reason="password_change", info=info)
        details = {"tokens_revoked": len(revoked)}
        record("auth.password_change", actor_id=user.id, info=info, details=details)
    if revoked:
        log.info(
            "password changed for user %s: %s access tokens revoked",
            user.id,
            len(revoked),
            extra={"event": "token.revoke", "user_id": user.id, "reason": "password_change"},
        )
    return PasswordChanged(tokens_revoked=len(revoked))
