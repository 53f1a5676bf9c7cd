"""Issuing, rotating and revoking personal access tokens.

A token's plaintext exists only in the return value of ``create_token`` and
``rotate_token``, which the caller shows once; the database keeps its SHA-256
and its first characters. Each change commits together with its audit row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import or_, update

from webapp.audit.service import RequestInfo, audited, record
from webapp.auth.models import User, lock_account, session_is_live
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys.errors import KeyServiceError, SignedOut
from webapp.tokens import format as token_format
from webapp.tokens import policy
from webapp.tokens.models import ACTIVE, EXPIRED, REPLACED, REVOKED, ROTATING, AccessToken

log = logging.getLogger(__name__)


class TokenInputError(KeyServiceError):
    code = "invalid_input"
    status = 422


class TokenNotFound(KeyServiceError):
    code = "token_not_found"
    status = 404


class TokenInactive(KeyServiceError):
    """Rotation asked of a token that is not active: expired, revoked or already rotated."""

    code = "token_inactive"
    status = 409


_NOT_ROTATABLE = {
    EXPIRED: "This token has expired, so it cannot be rotated: create a new token instead.",
    REVOKED: "This token was revoked, so it cannot be rotated: create a new token instead.",
    ROTATING: "This token was already rotated: rotate its successor instead.",
    REPLACED: "This token was already rotated: rotate its successor instead.",
}


class TooManyTokens(KeyServiceError):
    code = "too_many_tokens"
    status = 409


@dataclass(frozen=True)
class TokenSpec:
    """A token request that passed every check; build it with ``clean_spec``."""

    name: str
    scopes: list[str]
    expires_in_days: int | None
    allowed_ips: list[str]


@dataclass(frozen=True)
class IssuedToken:
    row: AccessToken
    token: str  # the plaintext, to be shown once and then forgotten


def clean_spec(name: Any, scopes: Any, expires_in_days: Any, allowed_ips: Any) -> TokenSpec:
    """Check a request for a new token; raise TokenInputError naming every bad field."""
    config = current_app.config
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, (value, problem) in {
        "name": policy.clean_name(name),
        "scopes": policy.clean_scopes(scopes),
        "expires_in_days": policy.clean_expiry(expires_in_days, config),
        "allowed_ips": policy.clean_allowed_ips(allowed_ips),
    }.items():
        cleaned[field] = value
        if problem:
            errors[field] = problem
    if errors:
        message = "The token was not created: please correct the marked fields."
        raise TokenInputError(message, errors)
    return TokenSpec(**cleaned)


def _live(user_id: int) -> Any:
    now = utcnow()
    return db.select(AccessToken).where(
        AccessToken.user_id == user_id,
        AccessToken.revoked_at.is_(None),
        or_(AccessToken.expires_at.is_(None), AccessToken.expires_at > now),
        or_(AccessToken.grace_until.is_(None), AccessToken.grace_until > now),
    )


def _count(query: Any) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(query.subquery()))


def count_working(user: User) -> int:
    """How many of the user's tokens still work (grace periods included)."""
    return _count(_live(user.id))


def _check_limit(user: User, replacing: int | None = None) -> None:
    limit = current_app.config["TOKEN_MAX_PER_USER"]
    if replacing is None:
        live = count_working(user)
    else:
        # A rotation swaps one token for another; tokens already rotated, working out their
        # grace period, are on their way out too, so rotating every token after a leak is
        # not held up by the first ones' grace periods.
        live = _count(
            _live(user.id).where(AccessToken.id != replacing, AccessToken.replaced_by_id.is_(None))
        )
    if live >= limit:
        db.session.rollback()
        raise TooManyTokens(f"You already have {live} working tokens; revoke one first.")


def _issue(user: User, spec: TokenSpec) -> IssuedToken:
    token = token_format.generate()
    now = utcnow()
    row = AccessToken(
        user_id=user.id,
        name=spec.name,
        token_hint=token_format.hint(token),
        token_hash=token_format.token_hash(token),
        scopes=list(spec.scopes),
        expires_at=policy.expiry_from(now, spec.expires_in_days),
        allowed_ips=list(spec.allowed_ips),
        use_count=0,
        created_at=now,
    )
    db.session.add(row)
    db.session.flush()
    return IssuedToken(row, token)


def _details(row: AccessToken, **extra: Any) -> dict[str, Any]:
    return {"token_id": row.id, "hint": row.token_hint, **extra}


def _when(value: Any) -> str | None:
    return value.isoformat(timespec="seconds") if value is not None else None


def _hold_account(user: User) -> None:
    """Lock the account (see ``lock_account``) and make sure the browser asking is still
    signed in: a password change that ended its session, and revoked every token, may have
    committed while this request was on its way."""
    lock_account(user.id)
    if user.login_token is not None and not session_is_live(user.id, user.login_token):
        db.session.rollback()
        raise SignedOut("You were signed out; sign in again to manage access tokens.")


def create_token(user: User, spec: TokenSpec, *, info: RequestInfo | None = None) -> IssuedToken:
    _hold_account(user)
    _check_limit(user)
    with audited("token.create", actor_id=user.id, info=info):
        issued = _issue(user, spec)
        row = issued.row
        record(
            "token.create",
            actor_id=user.id,
            info=info,
            details=_details(
                row,
                name=row.name,
                scopes=row.scopes,
                expires_at=_when(row.expires_at),
                allowed_ips=row.allowed_ips,
            ),
        )
    log.info(
        "access token %s created for user %s",
        row.token_hint,
        user.id,
        extra={"event": "token.create", "user_id": user.id, "token_id": row.id},
    )
    return issued


def list_tokens(user: User) -> list[AccessToken]:
    return list(
        db.session.scalars(
            db.select(AccessToken)
            .filter_by(user_id=user.id)
            .order_by(AccessToken.created_at.desc(), AccessToken.id.desc())
        )
    )


def get_token(user: User, token_id: int) -> AccessToken:
    """The user's own token; another user's is simply not found."""
    row = db.session.scalar(db.select(AccessToken).filter_by(id=token_id, user_id=user.id))
    if row is None:
        raise TokenNotFound("You have no such token.")
    return row


def _locked(user: User, token_id: int) -> AccessToken:
    query = db.select(AccessToken).filter_by(id=token_id, user_id=user.id).with_for_update()
    row = db.session.scalar(query)
    if row is None:
        raise TokenNotFound("You have no such token.")
    return row


def _in_grace_before(row: AccessToken, now: Any) -> tuple[Any, ...]:
    return (
        AccessToken.user_id == row.user_id,
        AccessToken.replaced_by_id == row.id,
        AccessToken.revoked_at.is_(None),
        AccessToken.grace_until > now,
    )


def predecessor_in_grace(row: AccessToken) -> AccessToken | None:
    """The token ``row`` replaced, while it still works: rotating ``row`` ends it."""
    return db.session.scalar(db.select(AccessToken).where(*_in_grace_before(row, utcnow())))


def rotation_refusal(row: AccessToken) -> str | None:
    """Why ``row`` cannot be rotated now, or None if it can: only an active token can.

    A successor of an expired or revoked token would bring a dead credential
    back to life with a fresh lifetime, so such a token is replaced by creating
    a new one, deliberately.
    """
    state = row.state(utcnow())
    return None if state == ACTIVE else _NOT_ROTATABLE[state]


def rotate_token(
    user: User, token_id: int, *, grace_hours: int, info: RequestInfo | None = None
) -> IssuedToken:
    """Issue a successor with the same settings; the old token works for ``grace_hours`` more."""
    _hold_account(user)
    old = _locked(user, token_id)
    refusal = rotation_refusal(old)
    if refusal is not None:
        db.session.rollback()
        raise TokenInactive(refusal)
    _check_limit(user, replacing=old.id)
    spec = TokenSpec(
        name=old.name,
        scopes=list(old.scopes),
        expires_in_days=policy.lifetime_days(old.created_at, old.expires_at, current_app.config),
        allowed_ips=list(old.allowed_ips),
    )
    now = utcnow()
    grace_until = now + timedelta(hours=grace_hours)
    if old.expires_at is not None:
        grace_until = min(grace_until, old.expires_at)
    with audited("token.rotate", actor_id=user.id, info=info, details=_details(old)):
        issued = _issue(user, spec)
        # Conditional, so that of two rotations racing (SQLite has no FOR UPDATE) one fails,
        # and so does a rotation racing the token's expiry.
        claimed = db.session.execute(
            update(AccessToken)
            .where(
                AccessToken.id == old.id,
                AccessToken.grace_until.is_(None),
                AccessToken.revoked_at.is_(None),
                or_(AccessToken.expires_at.is_(None), AccessToken.expires_at > now),
            )
            .values(grace_until=grace_until, replaced_by_id=issued.row.id),
            execution_options={"synchronize_session": False},
        ).rowcount
        if claimed != 1:
            raise TokenInactive("The token was rotated, revoked or expired meanwhile.")
        # The token this one replaced stops now: its grace period was for moving over to
        # this one, which is itself being replaced. Left working, rotating a token again
        # and again would pile up working tokens past TOKEN_MAX_PER_USER.
        ended = (
            db.session.execute(
                update(AccessToken)
                .where(*_in_grace_before(old, now))
                .values(grace_until=now)
                .returning(AccessToken.id),
                execution_options={"synchronize_session": False},
            )
            .scalars()
            .all()
        )
        stopped = {"ended_grace_of": sorted(ended)} if ended else {}
        record(
            "token.rotate",
            actor_id=user.id,
            info=info,
            details=_details(
                old,
                new_token_id=issued.row.id,
                new_hint=issued.row.token_hint,
                grace_until=_when(grace_until),
                **stopped,
            ),
        )
    log.info(
        "access token %s rotated to %s for user %s",
        old.token_hint,
        issued.row.token_hint,
        user.id,
        extra={"event": "token.rotate", "user_id": user.id, "token_id": old.id},
    )
    return issued


def revoke_token(user: User, token_id: int, *, info: RequestInfo | None = None) -> AccessToken:
    """Stop the token at once, grace period or not. Revoking twice changes nothing."""
    row = _locked(user, token_id)
    if row.revoked_at is not None:
        db.session.rollback()
        return row
    with audited("token.revoke", actor_id=user.id, info=info, details=_details(row)):
        row.revoked_at = utcnow()
        record("token.revoke", actor_id=user.id, info=info, details=_details(row))
    log.info(
        "access token %s revoked for user %s",
        row.token_hint,
        user.id,
        extra={"event": "token.revoke", "user_id": user.id, "token_id": row.id},
    )
    return row


def revoke_working_tokens(
    user: User, *, reason: str, info: RequestInfo | None = None
) -> list[AccessToken]:
    """Revoke every token of the user that still works, in the caller's transaction.

    For a change of credentials (a new password) that should end every way in:
    each token gets its own ``token.revoke`` row, with ``reason``; the caller
    records its own event, commits and logs.
    """
    rows = list(db.session.scalars(_live(user.id).with_for_update()))
    now = utcnow()
    for row in rows:
        row.revoked_at = now
        record("token.revoke", actor_id=user.id, info=info, details=_details(row, reason=reason))
    return rows
