"""The one call the application makes before talking to a provider: which key to use.

``get_key_for(user, provider)``: the user's own key, else the admin's global
key where fallback is allowed, else ``NoKeyAvailable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webapp.auth.models import User
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys.errors import KeyServiceError
from webapp.keys.inputs import require_provider
from webapp.keys.models import GlobalAPIKey, UserAPIKey
from webapp.keys.service import decrypt_global, decrypt_row, find_row
from webapp.keys.statuses import usable


class NoKeyAvailable(KeyServiceError):
    """There is no key to use; ``reason`` is "no_key" or "key_invalid" (the user's own)."""

    code = "no_key_available"
    status = 404

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResolvedKey:
    """The key to use for a provider call. Its repr never shows the value."""

    value: str = field(repr=False)
    source: str  # "user" or "global"
    config: dict[str, Any] = field(default_factory=dict)


def _mark_used(model: type[UserAPIKey] | type[GlobalAPIKey], row_id: int) -> None:
    # One UPDATE, and updated_at (when the key was stored) is left as it was.
    db.session.execute(
        db.update(model)
        .where(model.id == row_id)
        .values(last_used_at=utcnow(), updated_at=model.updated_at),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()


def get_key_for(user: User | None, provider_id: str) -> ResolvedKey:
    """The key the application should use for ``user`` and ``provider_id``.

    The user's own key unless it is known to be invalid (an unchecked key, or
    one whose provider could not be reached, is used); else the global key if
    the admin allows fallback for this provider and it is not known to be
    invalid; else ``NoKeyAvailable``. ``user`` None asks for the global key
    alone. Records the use (``last_used_at``) and commits.
    """
    provider = require_provider(provider_id)
    own = find_row(user.id, provider_id) if user is not None else None
    # Everything is read before the commit in _mark_used, which expires the row.
    if usable(own):
        resolved = ResolvedKey(decrypt_row(own), "user", dict(own.config or {}))
        _mark_used(UserAPIKey, own.id)
        return resolved
    shared = db.session.scalar(db.select(GlobalAPIKey).filter_by(provider=provider_id))
    if usable(shared) and shared.fallback_enabled:
        resolved = ResolvedKey(decrypt_global(shared), "global", dict(shared.config or {}))
        _mark_used(GlobalAPIKey, shared.id)
        return resolved
    if own is not None:
        raise NoKeyAvailable(
            f"Your {provider.name} key was rejected by {provider.name}: replace it to continue.",
            "key_invalid",
        )
    raise NoKeyAvailable(f"There is no {provider.name} key to use: add one first.", "no_key")
