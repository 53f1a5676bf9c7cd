"""What a provider's check means for a stored key, and its audit row.

A check's outcome lands on the row it judged (never on a key that replaced it
meanwhile: ``still_held``); a key the provider calls invalid is refused before
it is stored (``check_new_key``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import inspect as sa_inspect

from webapp import monitoring
from webapp.audit.service import RequestInfo, record
from webapp.crypto import KeyDecryptionError, KeyScope, current_keyring, fingerprint, mask_key
from webapp.extensions import db
from webapp.keys.errors import InvalidKeyInput, KeyRejected
from webapp.keys.models import STATUS_UNCHECKED, hold_keys, key_scope
from webapp.providers.catalog import INVALID, Provider
from webapp.providers.checks import app_checker
from webapp.providers.classify import CheckResult


def audit_details(row: Any, **extra: Any) -> dict[str, Any]:
    """What an audit row may say of a stored key: its hint and fingerprint, never the key."""
    return {"hint": row.key_hint, "fingerprint": fingerprint(row.key_hash), **extra}


def apply_check(row: Any, check: CheckResult | None) -> None:
    """Record a check's outcome on a stored key (user or global; None: unchecked).

    The caller commits.
    """
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


def holds(row: Any, scope: KeyScope, api_key: str, config: Mapping[str, Any]) -> bool:
    """Whether ``row`` holds ``api_key`` with ``config``, compared by the key's hash under the
    secret the row is sealed with now (never decrypted)."""
    config = dict(config)
    if not row.key_hash or not row.key_version or dict(row.config or {}) != config:
        return False
    try:
        expected = current_keyring().key_hash(scope, api_key, row.key_version, config)
    except KeyDecryptionError:  # sealed under a retired secret: cannot tell, so not the same
        return False
    return hmac.compare_digest(expected, row.key_hash)


def still_held(checked: Sequence[tuple[Any, str, Mapping[str, Any]]]) -> list[bool]:
    """For each (row, key checked, settings it was checked with): whether the row still holds
    that key with those settings.

    A check takes seconds, and meanwhile the owner may replace or delete the
    key: the verdict on the old key must not land on the new one, nor an update
    on a row that is gone. The rows (all of one kind) are held until the caller
    commits (``hold_keys``) and read again: the rows still held are the
    caller's to change, as they are now. A rotation of the server secret
    meanwhile seals the same key anew (another ``key_hash``): compared by the
    key itself, its verdict still lands.
    """
    if not checked:
        return []
    model = type(checked[0][0])
    # From the identity: a row expired by a commit and deleted since cannot be reloaded.
    ids = [sa_inspect(row).identity[0] for row, _, _ in checked]
    hold_keys(model, model.id.in_(ids))
    # In id order: two checks of overlapping keys lock them in the same order, never crosswise.
    query = (
        db.select(model)
        .where(model.id.in_(ids))
        .order_by(model.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    current = {row.id: row for row in db.session.scalars(query)}
    held = []
    for row_id, (_, key, config) in zip(ids, checked, strict=True):
        row = current.get(row_id)
        held.append(row is not None and holds(row, key_scope(model, row), key, config))
    return held


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
        details = audit_details(row, **details)
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
