"""Server-wide fallback keys: set by an admin, or with the setup token before there is one.

They follow the rules of users' keys (the same input checks, the same live
check before saving, the same encryption) under a derivation context of
their own (``KeyScope.for_global``), in ``global_api_keys``. Whether users
without a usable key of their own may fall back to one is a per-provider
switch (``fallback_enabled``); ``keys.resolve.get_key_for`` obeys it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from webapp import monitoring
from webapp.audit.service import RequestInfo, audited, record, record_failure
from webapp.auth.models import User
from webapp.crypto import KeyScope, current_keyring, fingerprint, mask_key
from webapp.extensions import db
from webapp.keys.errors import KeyConflict, KeyNotFound, KeyReplaced
from webapp.keys.inputs import clean_input, require_provider
from webapp.keys.models import GlobalAPIKey, hold_keys
from webapp.keys.service import decrypt_global, put_key
from webapp.keys.statuses import KeyStatus, status_of
from webapp.keys.verdicts import apply_check, check_new_key, record_check, still_held
from webapp.providers.catalog import all_providers, provider_name
from webapp.providers.checks import app_checker
from webapp.providers.classify import CheckResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GlobalKeyStatus:
    """What an admin (or the setup token's holder) may see of a global key."""

    key: KeyStatus
    fallback_enabled: bool


def find_global(provider_id: str) -> GlobalAPIKey | None:
    return db.session.scalar(db.select(GlobalAPIKey).filter_by(provider=provider_id))


def _actor_id(actor: User | None) -> int | None:
    return actor.id if actor is not None else None


def _details(row: GlobalAPIKey, **extra: Any) -> dict[str, Any]:
    return {"hint": row.key_hint, "fingerprint": fingerprint(row.key_hash), **extra}


def _status(row: GlobalAPIKey | None, provider_id: str) -> GlobalKeyStatus:
    provider = require_provider(provider_id)
    enabled = row.fallback_enabled if row is not None else False
    return GlobalKeyStatus(status_of(provider, row), enabled)


def global_status(provider_id: str) -> GlobalKeyStatus:
    return _status(find_global(provider_id), provider_id)


def list_global_status() -> list[GlobalKeyStatus]:
    """One entry per supported provider, in catalogue order; one query."""
    rows = {row.provider: row for row in db.session.scalars(db.select(GlobalAPIKey))}
    return [_status(rows.get(p.id), p.id) for p in all_providers()]


def save_global_key(
    provider_id: str,
    api_key: str | None,
    extra: dict[str, Any],
    *,
    actor: User | None,
    info: RequestInfo | None = None,
    validate: bool = True,
) -> tuple[GlobalAPIKey, bool]:
    """Check the input, ask the provider (unless told not to), then store the key.

    ``actor`` is the admin, or None when the setup token authorised the call.
    A key the provider rejects is not stored (``KeyRejected``). Returns the row
    and whether it was created (False: replaced).
    """
    provider = require_provider(provider_id)
    key, config = clean_input(provider, api_key, extra)
    check = None
    if validate:
        check = check_new_key(provider, key, config, actor_id=_actor_id(actor), info=info)
    return _store(provider_id, key, config, actor=actor, info=info, check=check)


def _store(
    provider_id: str,
    api_key: str,
    config: dict[str, str],
    *,
    actor: User | None,
    info: RequestInfo | None,
    check: CheckResult | None,
) -> tuple[GlobalAPIKey, bool]:
    provider = require_provider(provider_id)
    sealed = current_keyring().encrypt(KeyScope.for_global(provider_id), api_key, config)
    actor_id = _actor_id(actor)
    via = "admin" if actor is not None else "setup_token"
    for attempt in range(2):
        # Held and read afresh: another save, check or delete of it waits for this one.
        hold_keys(GlobalAPIKey, GlobalAPIKey.provider == provider_id)
        query = db.select(GlobalAPIKey).filter_by(provider=provider_id)
        row = db.session.scalar(query.execution_options(populate_existing=True))
        created = row is None
        if created:
            row = GlobalAPIKey(provider=provider_id, fallback_enabled=True)
            db.session.add(row)
        hint = mask_key(api_key, provider.key_prefix)
        put_key(row, KeyScope.for_global(provider_id), api_key, sealed, hint, config, check)
        row.updated_by_id = actor_id
        action = "global_key.set" if created else "global_key.replace"
        try:
            db.session.flush()
            details = _details(row, status=row.status, via=via)
            record(action, actor_id=actor_id, provider=provider_id, info=info, details=details)
            if check is not None:
                record_check(row, check, actor_id=actor_id, info=info, trigger="save")
            db.session.expunge(row)  # handed back as saved, whatever happens to it next
            db.session.commit()
        except (IntegrityError, StaleDataError):
            # Created by a concurrent request (replace it instead) or deleted by one (create
            # it again: this save is the newer).
            db.session.rollback()
            if attempt:
                record_failure(action, actor_id=actor_id, provider=provider_id, info=info)
                raise KeyConflict() from None
            continue
        except Exception:
            record_failure(action, actor_id=actor_id, provider=provider_id, info=info)
            raise
        log.info(
            "global %s key %s (%s)",
            provider_id,
            action,
            row.status,
            extra={"event": action, "user_id": actor_id, "provider": provider_id},
        )
        return row, created
    raise AssertionError("unreachable")


def _existing(provider_id: str) -> GlobalAPIKey:
    require_provider(provider_id)
    row = find_global(provider_id)
    if row is None:
        raise KeyNotFound(f"There is no global key for {provider_name(provider_id)}.")
    return row


def delete_global_key(
    provider_id: str, *, actor: User, info: RequestInfo | None = None, shown: str | None = None
) -> None:
    """Delete the global key; with ``shown``, only if it is still the key the page showed."""
    row = _existing(provider_id)
    details = _details(row)
    with audited(
        "global_key.delete",
        refusals=(KeyReplaced, KeyNotFound),
        actor_id=actor.id,
        provider=provider_id,
        info=info,
    ):
        if shown is not None and shown != fingerprint(row.key_hash):
            raise KeyReplaced(
                f"The global {provider_name(provider_id)} key was replaced after the page was "
                "shown; nothing was deleted. This is the key stored now."
            )
        # Only the key that was read: one another admin replaced meanwhile is newer than
        # this request, and one deleted meanwhile is already gone.
        deleted = db.session.execute(
            db.delete(GlobalAPIKey).where(
                GlobalAPIKey.id == row.id, GlobalAPIKey.key_hash == row.key_hash
            ),
            execution_options={"synchronize_session": False},
        ).rowcount
        db.session.expunge(row)
        if not deleted:
            raise KeyNotFound(
                f"The global {provider_name(provider_id)} key was deleted or replaced "
                "meanwhile; nothing was deleted."
            )
        record(
            "global_key.delete", actor_id=actor.id, provider=provider_id, info=info, details=details
        )


def set_fallback(
    provider_id: str, enabled: bool, *, actor: User, info: RequestInfo | None = None
) -> None:
    """Allow or stop users' fallback to the global key for one provider."""
    row = _existing(provider_id)
    details = _details(row, enabled=enabled)
    with audited(
        "global_key.fallback",
        refusals=(KeyNotFound,),
        actor_id=actor.id,
        provider=provider_id,
        info=info,
    ):
        # Conditional: a key another admin deleted meanwhile is not found, not a 500.
        switched = db.session.execute(
            db.update(GlobalAPIKey)
            .where(GlobalAPIKey.provider == provider_id)
            .values(fallback_enabled=enabled),
            execution_options={"synchronize_session": False},
        ).rowcount
        if not switched:
            raise KeyNotFound(
                f"The global {provider_name(provider_id)} key was deleted meanwhile; "
                "nothing was changed."
            )
        record(
            "global_key.fallback",
            actor_id=actor.id,
            provider=provider_id,
            info=info,
            details=details,
        )


def validate_global_key(
    provider_id: str, *, actor: User, info: RequestInfo | None = None
) -> CheckResult:
    """Check the stored global key now and record the outcome."""
    provider = require_provider(provider_id)
    row = _existing(provider_id)
    key, config = decrypt_global(row), dict(row.config or {})
    result = app_checker().check(provider, key, config)
    actor_id = actor.id
    with audited("key.validate", actor_id=actor_id, provider=provider_id, info=info):
        if not still_held([(row, key, config)])[0]:
            return result  # replaced or deleted during the check: the verdict is not its own
        apply_check(row, result)
        record_check(row, result, actor_id=actor_id, info=info, trigger="manual")
    monitoring.key_checked(actor_id, provider_id, result, ip=info and info.ip, key="global")
    return result
