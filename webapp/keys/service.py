"""Storing, replacing, checking and deleting users' API keys.

Views and API endpoints call these functions; they never see ciphertext, and
the plaintext only exists inside the call that needs it. Each change commits
together with its audit row.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from webapp.audit.service import RequestInfo, audited, record, record_failure
from webapp.auth.models import User, lock_account
from webapp.crypto import (
    KeyScope,
    SealedKey,
    current_keyring,
    fingerprint,
    mask_key,
)
from webapp.extensions import db
from webapp.keys.errors import KeyConflict, KeyNotFound, KeyReplaced, SignedOut
from webapp.keys.inputs import clean_input, require_provider
from webapp.keys.models import GlobalAPIKey, UserAPIKey, hold_keys
from webapp.keys.verdicts import apply_check, audit_details, check_new_key, holds, record_check
from webapp.providers.catalog import provider_name
from webapp.providers.classify import CheckResult

log = logging.getLogger(__name__)


def find_row(user_id: int, provider_id: str) -> UserAPIKey | None:
    return db.session.scalar(db.select(UserAPIKey).filter_by(user_id=user_id, provider=provider_id))


def _row_to_change(user_id: int, provider_id: str) -> UserAPIKey | None:
    """The user's row for a provider, held and read afresh for this transaction to change:
    another request's save, check or delete of it waits until this one commits."""
    lock_account(user_id)  # two saves of one account take turns, creating the row included
    hold_keys(UserAPIKey, UserAPIKey.user_id == user_id, UserAPIKey.provider == provider_id)
    query = db.select(UserAPIKey).filter_by(user_id=user_id, provider=provider_id)
    return db.session.scalar(query.execution_options(populate_existing=True))


def get_user_key_row(user: User, provider_id: str) -> UserAPIKey:
    """The user's own row for a provider; another user's is simply not found."""
    require_provider(provider_id)
    row = find_row(user.id, provider_id)
    if row is None:
        raise KeyNotFound(f"You have no stored key for {provider_name(provider_id)}.")
    return row


def scope_of(row: UserAPIKey) -> KeyScope:
    return KeyScope.for_user(row.user_id, row.provider)


def decrypt_row(row: UserAPIKey) -> str:
    """A user's key in plaintext; KeyDecryptionError if the row was moved or altered."""
    return current_keyring().decrypt(scope_of(row), row.sealed, row.config)


def store_key(
    user: User,
    provider_id: str,
    api_key: str,
    config: dict[str, str],
    *,
    info: RequestInfo | None = None,
    check: CheckResult | None = None,
    expires_at: datetime | None = None,
) -> tuple[UserAPIKey, bool]:
    """Encrypt and store an already-cleaned key, replacing any previous one.

    ``check`` is the outcome of a live check made before saving; without it
    the key is "unchecked". ``expires_at`` is the new key's expiry reminder
    (a replaced key's reminder belonged to the old key). Returns the row and
    whether it was created (False: replaced).
    """
    provider = require_provider(provider_id)
    user_id = user.id  # after a rollback, reading it from ``user`` would need the database
    scope = KeyScope.for_user(user_id, provider_id)
    sealed = current_keyring().encrypt(scope, api_key, config)
    hint = mask_key(api_key, provider.key_prefix)
    for attempt in range(2):
        row = _row_to_change(user_id, provider_id)
        created = row is None
        if created:
            row = UserAPIKey(user_id=user_id, provider=provider_id)
            db.session.add(row)
        put_key(row, scope, api_key, sealed, hint, config, check)
        row.expires_at = expires_at
        action = "key.set" if created else "key.replace"
        try:
            db.session.flush()
            record(
                action,
                actor_id=user_id,
                provider=provider_id,
                info=info,
                details=audit_details(
                    row,
                    status=row.status,
                    **({"expires": expires_at.date().isoformat()} if expires_at else {}),
                ),
            )
            if check is not None:
                record_check(row, check, actor_id=user_id, info=info, trigger="save")
            # Handed back as saved: a delete from another tab right after the commit must
            # not turn reading it (for the message, the log) into a failure of this save.
            db.session.expunge(row)
            db.session.commit()
        except (IntegrityError, StaleDataError):
            # Another request created the row first (the second pass replaces it) or deleted
            # it (the second pass creates it again: this save is the newer).
            db.session.rollback()
            if not account_exists(user_id):
                raise SignedOut("Your account no longer exists; nothing was saved.") from None
            if attempt:
                record_failure(action, actor_id=user_id, provider=provider_id, info=info)
                raise KeyConflict() from None
            continue
        except Exception:
            record_failure(action, actor_id=user_id, provider=provider_id, info=info)
            raise
        log.info(
            "%s key %s for user %s (%s)",
            provider_id,
            action,
            user_id,
            row.status,
            extra={"event": action, "user_id": user_id, "provider": provider_id, "hint": hint},
        )
        return row, created
    raise AssertionError("unreachable")


def account_exists(user_id: int) -> bool:
    return db.session.get(User, user_id) is not None


def put_key(
    row: Any,
    scope: KeyScope,
    api_key: str,
    sealed: SealedKey,
    hint: str,
    config: dict[str, str],
    check: CheckResult | None,
) -> None:
    """Seal ``api_key`` into ``row`` (a user's or a global key) and record its check.

    What earlier checks learnt (validity, models, details) belongs to the key
    they checked: it survives only when ``row`` already held this very key with
    these settings. Otherwise a check that cannot judge the new key (throttled,
    unreachable) would leave it wearing the old key's verdict.
    """
    same = holds(row, scope, api_key, config)
    row.seal(sealed, hint)
    row.config = dict(config)
    if not same:
        apply_check(row, None)
    if check is not None:  # saved unchecked: the same key keeps its verdict, a rejection too
        apply_check(row, check)


def delete_key(
    user: User, provider_id: str, *, info: RequestInfo | None = None, shown: str | None = None
) -> None:
    """Delete the user's key for ``provider_id``; with ``shown`` (the fingerprint a page asking
    to confirm showed), only if it is still that key: ``KeyReplaced`` otherwise."""
    row = get_user_key_row(user, provider_id)
    details = audit_details(row)
    user_id = user.id
    with audited(
        "key.delete",
        refusals=(KeyNotFound, KeyReplaced),
        actor_id=user_id,
        provider=provider_id,
        info=info,
    ):
        if shown is not None and shown != fingerprint(row.key_hash):
            raise KeyReplaced(
                f"Your {provider_name(provider_id)} key was replaced after the page was shown; "
                "nothing was deleted. This is the key stored now."
            )
        # Only the key that was read and shown: one replaced meanwhile (in another tab) is
        # newer than this request, and one deleted meanwhile is already gone.
        deleted = db.session.execute(
            db.delete(UserAPIKey).where(
                UserAPIKey.id == row.id, UserAPIKey.key_hash == row.key_hash
            ),
            execution_options={"synchronize_session": False},
        ).rowcount
        db.session.expunge(row)
        if not deleted:
            raise KeyNotFound(
                f"Your {provider_name(provider_id)} key was deleted or replaced meanwhile; "
                "nothing was deleted."
            )
        record("key.delete", actor_id=user_id, provider=provider_id, info=info, details=details)
    log.info(
        "%s key deleted for user %s",
        provider_id,
        user_id,
        extra={"event": "key.delete", "user_id": user_id, "provider": provider_id},
    )


def clear_keys(user: User, *, info: RequestInfo | None = None) -> int:
    """Delete all of the user's keys; audited when there was one to delete (a call that
    changes nothing leaves no row, as deleting a key that is not there leaves none)."""
    user_id = user.id
    with audited("key.clear_all", actor_id=user_id, info=info):
        # One statement: the keys it names are the keys it deleted, whatever other tabs did.
        providers = db.session.scalars(
            db.delete(UserAPIKey)
            .where(UserAPIKey.user_id == user_id)
            .returning(UserAPIKey.provider)
        ).all()
        if not providers:
            return 0
        record(
            "key.clear_all",
            actor_id=user_id,
            info=info,
            details={"count": len(providers), "providers": sorted(providers)},
        )
    return len(providers)


def decrypt_global(row: GlobalAPIKey) -> str:
    """A global key in plaintext; KeyDecryptionError if the row was moved or altered."""
    return current_keyring().decrypt(KeyScope.for_global(row.provider), row.sealed, row.config)


def save_key(
    user: User,
    provider_id: str,
    api_key: str | None,
    extra: dict[str, Any],
    *,
    info: RequestInfo | None = None,
    validate: bool = True,
    expires_at: datetime | None = None,
) -> tuple[UserAPIKey, bool]:
    """Check the input, ask the provider, and store the key; for forms and the API.

    A key the provider calls invalid is not stored (``KeyRejected``) and any
    key already stored stays as it was. When the provider cannot be asked
    (network or provider error) the key is stored with that status; the
    caller tells the user from ``row.status``.
    """
    provider = require_provider(provider_id)
    key, config = clean_input(provider, api_key, extra)
    check = None
    if validate:
        check = check_new_key(provider, key, config, actor_id=user.id, info=info)
    return store_key(user, provider_id, key, config, info=info, check=check, expires_at=expires_at)
