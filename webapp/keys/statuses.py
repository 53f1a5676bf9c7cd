"""What may be shown about each provider's key: the dashboard, the status call, the API.

Never the key itself: the status reads plain columns, never the ciphertext,
and says which key ``get_key_for`` would use ("user", "global" or "none").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from webapp.auth.models import User
from webapp.crypto import fingerprint
from webapp.extensions import db
from webapp.keys.inputs import require_provider
from webapp.keys.models import GlobalAPIKey, UserAPIKey
from webapp.keys.service import find_row
from webapp.providers.catalog import Provider, all_providers


@dataclass(frozen=True)
class KeyStatus:
    """What may be shown about a provider's key. Never the key itself."""

    provider: str
    provider_name: str
    has_key: bool
    masked_key: str | None = None
    status: str = "none"
    is_valid: bool | None = None
    last_validated: datetime | None = None
    last_error: str | None = None
    models: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    fingerprint: str | None = None  # crypto.fingerprint: which key a confirmation page showed
    source: str = "none"  # what get_key_for would use: "user", "global" or "none"


def status_of(provider: Provider, row: Any | None, source: str = "none") -> KeyStatus:
    """What may be shown of ``row`` (a user's or a global key), or of its absence."""
    if row is None:
        return KeyStatus(
            provider=provider.id, provider_name=provider.name, has_key=False, source=source
        )
    return KeyStatus(
        provider=provider.id,
        provider_name=provider.name,
        has_key=True,
        masked_key=row.key_hint,
        status=row.status,
        is_valid=row.is_valid,
        last_validated=row.last_validated,
        last_error=row.last_error,
        models=list(row.models or []),
        details=dict(row.details or {}),
        config=dict(row.config or {}),
        updated_at=row.updated_at,
        expires_at=getattr(row, "expires_at", None),
        fingerprint=fingerprint(row.key_hash),
        source=source,
    )


def usable(row: Any | None) -> bool:
    """A stored key that is not known to be invalid (unchecked or unreachable counts)."""
    return row is not None and row.is_valid is not False


def _source(own: UserAPIKey | None, fallback_usable: bool) -> str:
    if usable(own):
        return "user"
    return "global" if fallback_usable else "none"


#: Providers whose global key users may fall back to now. Built once: a request
#: only binds values, and SQLAlchemy reuses the compiled SQL.
_FALLBACK_PROVIDERS = db.select(GlobalAPIKey.provider).where(
    GlobalAPIKey.fallback_enabled.is_(True),
    db.or_(GlobalAPIKey.is_valid.is_(None), GlobalAPIKey.is_valid.is_(True)),
)

#: What a status shows of a user's keys: plain columns, never the ciphertext.
_STATUS_COLUMNS = (
    "key_hint",
    "status",
    "is_valid",
    "last_validated",
    "last_error",
    "models",
    "details",
    "config",
    "updated_at",
    "expires_at",
    "key_hash",
)

#: A user's keys and, in the same round trip, the providers with a usable global key:
#: one row per own key (``own`` true), one per fallback provider (the rest NULL).
_STATUS_ROWS = db.union_all(
    db.select(
        UserAPIKey.provider,
        db.literal(True).label("own"),
        *(getattr(UserAPIKey, name) for name in _STATUS_COLUMNS),
    ).where(UserAPIKey.user_id == db.bindparam("user_id")),
    db.select(
        GlobalAPIKey.provider,
        db.literal(False).label("own"),
        *(db.null().label(name) for name in _STATUS_COLUMNS),
    ).where(_FALLBACK_PROVIDERS.whereclause),
)


def _fallback_usable(provider_id: str) -> bool:
    """Whether users may fall back to the global key for ``provider_id`` now; one light query."""
    query = _FALLBACK_PROVIDERS.where(GlobalAPIKey.provider == provider_id)
    return db.session.scalar(query) is not None


def list_status(user: User) -> list[KeyStatus]:
    """One status per supported provider, in catalogue order; one query.

    Read on every dashboard view and status call, so it skips the ORM: plain
    rows, from a statement SQLAlchemy compiles once.
    """
    own: dict[str, Any] = {}
    fallback: set[str] = set()
    db.session.flush()  # a plain connection does not autoflush: show this transaction's changes
    for row in db.session.connection().execute(_STATUS_ROWS, {"user_id": user.id}):
        if row.own:
            own[row.provider] = row
        else:
            fallback.add(row.provider)
    return [
        status_of(p, own.get(p.id), _source(own.get(p.id), p.id in fallback))
        for p in all_providers()
    ]


def key_status(user: User, provider_id: str) -> KeyStatus:
    provider = require_provider(provider_id)
    row = find_row(user.id, provider_id)
    fallback = not usable(row) and _fallback_usable(provider_id)
    return status_of(provider, row, _source(row, fallback))
