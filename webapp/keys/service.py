"""Storing, replacing, checking and deleting users' API keys.

Views and API endpoints call these functions; they never see ciphertext, and
the plaintext only exists inside the call that needs it. Each change commits
together with its audit row.
"""

from __future__ import annotations

import hmac
import logging
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.exc import IntegrityError

from webapp import monitoring
from webapp.audit.service import RequestInfo, audited, record, record_failure
from webapp.auth.models import User
from webapp.crypto import (
    KeyDecryptionError,
    KeyScope,
    SealedKey,
    current_keyring,
    fingerprint,
    mask_key,
)
from webapp.extensions import db
from webapp.keys.models import STATUS_UNCHECKED, GlobalAPIKey, UserAPIKey
from webapp.providers.catalog import INVALID, Provider, all_providers, get_provider
from webapp.providers.checks import app_checker
from webapp.providers.classify import CheckResult
from webapp.providers.endpoints import EndpointError, EndpointPolicy, check_url

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 512


class KeyServiceError(Exception):
    """A request the service refuses; ``code`` is machine-readable."""

    code = "error"
    status = 400

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class UnknownProvider(KeyServiceError):
    code = "unknown_provider"
    status = 404


class KeyNotFound(KeyServiceError):
    code = "key_not_found"
    status = 404


class InvalidKeyInput(KeyServiceError):
    code = "invalid_input"
    status = 422


class KeyRejected(KeyServiceError):
    """The provider says the key is not a working key; nothing was stored."""

    code = "key_rejected"
    status = 422


def require_provider(provider_id: str) -> Provider:
    provider = get_provider(provider_id)
    if provider is None:
        raise UnknownProvider(f"Unknown provider {provider_id!r}.")
    return provider


def endpoint_policy() -> EndpointPolicy:
    return EndpointPolicy(
        allow_http=current_app.config["ALLOW_HTTP_ENDPOINTS"],
        allow_private=current_app.config["ALLOW_PRIVATE_ENDPOINTS"],
    )


_WHITESPACE = re.compile(r"\s")


def _has_invisible(value: str) -> bool:
    """Control, format (zero-width), private-use or unassigned characters."""
    return any(unicodedata.category(ch).startswith("C") for ch in value)


def key_problem(provider: Provider, api_key: str) -> str | None:
    """Why ``api_key`` cannot be a key for ``provider``, or None."""
    if not api_key:
        return "Enter the API key."
    if len(api_key) > MAX_KEY_LENGTH:
        return f"That is longer than any API key ({MAX_KEY_LENGTH} characters at most)."
    if _WHITESPACE.search(api_key):
        return "The key contains spaces or line breaks; paste it again without them."
    if _has_invisible(api_key) or not api_key.isascii():
        return "The key contains characters that cannot be part of an API key."
    if not provider.key_matches_format(api_key):
        if wrong := provider.wrong_kind(api_key):
            return wrong
        for other in all_providers():
            # Only a prefix tells providers apart; a bare run of letters could be anybody's.
            if other is not provider and other.key_prefix and other.key_matches_format(api_key):
                return (
                    f"This looks like a key for {other.name}, not for {provider.name}. "
                    f"Expected: {provider.key_format}."
                )
        return (
            f"This does not look like a key for {provider.name}. Expected: {provider.key_format}."
        )
    return None


def clean_input(
    provider: Provider, api_key: str | None, extra: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    """Check a submitted key and its settings; return them cleaned or raise InvalidKeyInput."""
    errors: dict[str, str] = {}
    key = (api_key or "").strip() if isinstance(api_key, str) else ""
    if api_key is not None and not isinstance(api_key, str):
        errors["api_key"] = "The key must be a string."
    elif problem := key_problem(provider, key):
        errors["api_key"] = problem
    config: dict[str, str] = {}
    for spec in provider.extra_fields:
        raw = extra.get(spec.name)
        if raw is not None and not isinstance(raw, str):
            errors[spec.name] = f"{spec.label} must be a string."
            continue
        value = (raw or "").strip() or spec.default
        if not value:
            if spec.required:
                errors[spec.name] = f"Enter the {spec.label.lower()}."
            continue
        if len(value) > spec.max_length:
            errors[spec.name] = f"{spec.label} is too long ({spec.max_length} characters at most)."
        elif _WHITESPACE.search(value):
            errors[spec.name] = (
                f"{spec.label} contains spaces or line breaks; enter it without them."
            )
        elif _has_invisible(value):
            errors[spec.name] = f"{spec.label} contains invisible or control characters."
        elif spec.kind == "url":
            try:
                value = check_url(value, endpoint_policy())
            except EndpointError as exc:
                errors[spec.name] = str(exc)
        elif spec.pattern and not re.fullmatch(spec.pattern, value):
            errors[spec.name] = f"{spec.label} has the wrong format ({spec.help})."
        config[spec.name] = value
    if errors:
        raise InvalidKeyInput("The key was not saved: please correct the marked fields.", errors)
    return key, config


def find_row(user_id: int, provider_id: str) -> UserAPIKey | None:
    return db.session.scalar(db.select(UserAPIKey).filter_by(user_id=user_id, provider=provider_id))


def get_user_key_row(user: User, provider_id: str) -> UserAPIKey:
    """The user's own row for a provider; another user's is simply not found."""
    require_provider(provider_id)
    row = find_row(user.id, provider_id)
    if row is None:
        raise KeyNotFound(f"You have no stored key for {provider_id}.")
    return row


def scope_of(row: UserAPIKey) -> KeyScope:
    return KeyScope.for_user(row.user_id, row.provider)


def decrypt_row(row: UserAPIKey) -> str:
    """A user's key in plaintext; KeyDecryptionError if the row was moved or altered."""
    return current_keyring().decrypt(scope_of(row), row.sealed, row.config)


def _audit_details(row: UserAPIKey, **extra: Any) -> dict[str, Any]:
    return {"hint": row.key_hint, "fingerprint": fingerprint(row.key_hash), **extra}


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
    sealed = current_keyring().encrypt(KeyScope.for_user(user.id, provider_id), api_key, config)
    hint = mask_key(api_key, provider.key_prefix)
    user_id = user.id  # after a failed flush, reading it from ``user`` would need the database
    for attempt in range(2):
        row = find_row(user.id, provider_id)
        created = row is None
        if created:
            row = UserAPIKey(user_id=user.id, provider=provider_id)
            db.session.add(row)
        put_key(row, KeyScope.for_user(user.id, provider_id), api_key, sealed, hint, config, check)
        row.expires_at = expires_at
        action = "key.set" if created else "key.replace"
        try:
            db.session.flush()
            record(
                action,
                actor_id=user.id,
                provider=provider_id,
                info=info,
                details=_audit_details(
                    row,
                    status=row.status,
                    **({"expires": expires_at.date().isoformat()} if expires_at else {}),
                ),
            )
            if check is not None:
                record_check(row, check, actor_id=user.id, info=info, trigger="save")
            db.session.commit()
            log.info(
                "%s key %s for user %s (%s)",
                provider_id,
                action,
                user.id,
                row.status,
                extra={
                    "event": action,
                    "user_id": user.id,
                    "provider": provider_id,
                    "hint": row.key_hint,
                },
            )
            return row, created
        except IntegrityError:
            # Another request created the row first; the second pass replaces it.
            db.session.rollback()
            if attempt:
                raise
        except Exception:
            record_failure(action, actor_id=user_id, provider=provider_id, info=info)
            raise
    raise AssertionError("unreachable")


def _holds(row: Any, scope: KeyScope, api_key: str, config: dict[str, str]) -> bool:
    """Whether ``row`` already holds ``api_key`` with ``config`` (compared by its hash, never
    decrypted)."""
    if not row.key_hash or not row.key_version or dict(row.config or {}) != config:
        return False
    try:
        expected = current_keyring().key_hash(scope, api_key, row.key_version, config)
    except KeyDecryptionError:  # sealed under a retired secret: cannot tell, so not the same
        return False
    return hmac.compare_digest(expected, row.key_hash)


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
    same = _holds(row, scope, api_key, config)
    row.seal(sealed, hint)
    row.config = dict(config)
    if not same:
        _apply_check(row, None)
    _apply_check(row, check)


def _apply_check(row: Any, check: CheckResult | None) -> None:
    if check is None:
        row.status = STATUS_UNCHECKED
        row.is_valid = None
        row.last_validated = None
        row.last_error = None
        row.models = []
        row.details = {}
        return
    row.status = check.status
    if not check.keep_validity:  # a check that could not judge the key says nothing new
        row.is_valid = check.is_valid
    row.last_validated = check.checked_at
    row.last_error = check.describe()[:500] or None
    if check.models is not None:
        row.models = list(check.models)
    row.details = {
        **dict(check.details),
        "http_status": check.http_status,
        "elapsed_ms": check.elapsed_ms,
    }


def still_held(checked: Sequence[tuple[Any, str]]) -> list[bool]:
    """For each (row, key_hash that was checked): whether the row still holds that key.

    A check takes seconds, and meanwhile the owner may replace or delete the
    key: the verdict on the old key must not land on the new one, nor an update
    on a row that is gone. The rows (all of one kind) are read again and, where
    the database can (PostgreSQL), locked until the caller commits.
    """
    if not checked:
        return []
    model = type(checked[0][0])
    ids = [row.id for row, _ in checked]
    query = db.select(model.id, model.key_hash).where(model.id.in_(ids)).with_for_update()
    current = {row_id: key_hash for row_id, key_hash in db.session.execute(query)}
    return [current.get(row.id) == key_hash for row, key_hash in checked]


def apply_check(row: Any, check: CheckResult | None) -> None:
    """Record a check's outcome on a stored key (user or global; None: unchecked).

    The caller commits.
    """
    _apply_check(row, check)


def record_check(
    row: Any | None,
    check: CheckResult,
    *,
    actor_id: int | None,
    info: RequestInfo | None,
    trigger: str,
    provider: str | None = None,
    hint: str | None = None,
    subject_id: int | None = None,
) -> None:
    """The ``key.validate`` audit row for one check: its result, never the key.

    ``subject_id`` is whose key it is when that is not the actor (an operator's
    re-check of a user's key lands in the owner's history).
    """
    details: dict[str, Any] = {
        "status": check.status,
        "http_status": check.http_status,
        "trigger": trigger,
        "deep": "deep_check_model" in check.details,
    }
    if row is not None:
        details = _audit_details(row, **details)
        provider = row.provider
    elif hint:
        details["hint"] = hint
    record(
        "key.validate",
        actor_id=actor_id,
        subject_id=subject_id,
        provider=provider,
        info=info,
        details=details,
    )


def delete_key(user: User, provider_id: str, *, info: RequestInfo | None = None) -> None:
    row = get_user_key_row(user, provider_id)
    details = _audit_details(row)
    user_id = user.id
    with audited("key.delete", actor_id=user_id, provider=provider_id, info=info):
        db.session.delete(row)
        record("key.delete", actor_id=user_id, provider=provider_id, info=info, details=details)
    log.info(
        "%s key deleted for user %s",
        provider_id,
        user_id,
        extra={"event": "key.delete", "user_id": user_id, "provider": provider_id},
    )


def clear_keys(user: User, *, info: RequestInfo | None = None) -> int:
    rows = db.session.scalars(db.select(UserAPIKey).filter_by(user_id=user.id)).all()
    with audited("key.clear_all", actor_id=user.id, info=info):
        for row in rows:
            db.session.delete(row)
        record(
            "key.clear_all",
            actor_id=user.id,
            info=info,
            details={"count": len(rows), "providers": sorted(r.provider for r in rows)},
        )
    return len(rows)


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


def check_new_key(
    provider: Provider,
    key: str,
    config: dict[str, str],
    *,
    actor_id: int | None,
    info: RequestInfo | None,
) -> CheckResult:
    """Ask the provider about a key about to be stored (a user's or a global one).

    Raises InvalidKeyInput when the user-given endpoint may not be used, and
    KeyRejected (after auditing the refusal) when the provider calls the key
    invalid; any other outcome is returned for the caller to store.
    """
    check = app_checker().check(provider, key, config)
    if check.details.get("endpoint_blocked") and provider.base_url_field:
        field_name = provider.base_url_field
        raise InvalidKeyInput(
            "The key was not saved: please correct the marked fields.",
            {field_name: check.note},
        )
    if check.status == INVALID:
        _record_rejection(actor_id, provider, key, check, info)
        reason = check.describe() or f"{provider.name} rejected this key."
        raise KeyRejected(
            f"{provider.name} rejected the key, so it was not saved.", {"api_key": reason}
        )
    return check


def _record_rejection(
    actor_id: int | None,
    provider: Provider,
    key: str,
    check: CheckResult,
    info: RequestInfo | None,
) -> None:
    monitoring.validation_failed(
        actor_id,
        info.ip if info else None,
        provider.id,
        check.status,
        http_status=check.http_status,
        trigger="save",
    )
    hint = mask_key(key, provider.key_prefix)
    record_check(
        None, check, actor_id=actor_id, info=info, trigger="save", provider=provider.id, hint=hint
    )
    db.session.commit()
