"""Deleting an account and everything it stored (``flask keys purge-user``).

The user's keys and access tokens are deleted by the same transaction as
the account, explicitly rather than left to ON DELETE CASCADE, so nothing is
left behind whatever the database enforces. The audit trail keeps its rows
(they name users by id only) and gains a ``user.purge`` row that says what
was removed, without the address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from webapp.audit.service import RequestInfo, audited, record
from webapp.auth.models import User, lock_account
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey, UserAPIKey
from webapp.tokens.models import AccessToken

log = logging.getLogger(__name__)


class PurgeRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PurgeReport:
    user_id: int
    keys: int
    providers: list[str]
    tokens: int


_ONLY_ADMIN = (
    "That is the only admin account: create another admin first "
    "(flask create-admin), or nobody could manage this instance."
)


def _other_admins(user: User) -> int:
    return db.session.scalar(
        db.select(db.func.count()).select_from(User).where(User.is_admin, User.id != user.id)
    )


def _admins_left() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(User).where(User.is_admin))


def purge_user(email: str, *, info: RequestInfo | None = None) -> PurgeReport:
    """Delete the account of ``email`` with its keys and tokens; refuse the last admin."""
    user = find_user(email)
    if user is None:
        raise PurgeRefused(f"There is no account for {email.strip()!r}.")
    was_admin = user.is_admin
    if was_admin:
        # Two purges at once must not each count the other and remove both admins: the admin
        # rows stay locked until this one commits (PostgreSQL), and the count is taken again
        # after the delete, inside the write (SQLite holds its write lock by then).
        db.session.execute(db.select(User.id).where(User.is_admin).with_for_update()).all()
        if not _other_admins(user):
            raise PurgeRefused(_ONLY_ADMIN)
    user_id = user.id
    with audited("user.purge", refusals=(PurgeRefused,), subject_id=user_id, info=info):
        lock_account(user_id)  # a key being saved for it is waited for, and then counted
        # The keys named are the keys deleted, by the same statement.
        providers = sorted(
            db.session.scalars(
                db.delete(UserAPIKey).filter_by(user_id=user_id).returning(UserAPIKey.provider)
            )
        )
        keys = len(providers)
        tokens = db.session.execute(db.delete(AccessToken).filter_by(user_id=user_id)).rowcount
        db.session.execute(
            db.update(GlobalAPIKey).filter_by(updated_by_id=user_id).values(updated_by_id=None)
        )
        db.session.execute(db.delete(User).filter_by(id=user_id))
        if was_admin and not _admins_left():
            raise PurgeRefused(_ONLY_ADMIN)
        record(
            "user.purge",
            subject_id=user_id,
            info=info,
            details={"keys": keys, "providers": providers, "tokens": tokens},
        )
    db.session.expunge_all()
    log.warning(
        "user %s purged with %d key(s) and %d token(s)",
        user_id,
        keys,
        tokens,
        extra={"event": "user.purge", "user_id": user_id},
    )
    return PurgeReport(user_id, keys, providers, tokens)
