"""The JSON shapes the API answers with. None of them can hold a key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from webapp.keys.expiry import expiring_soon
from webapp.keys.facts import last_check
from webapp.keys.global_keys import GlobalKeyStatus
from webapp.keys.statuses import KeyStatus
from webapp.providers.catalog import Provider


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``: ``2025-01-31T12:00:00Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _stored(s: KeyStatus) -> dict[str, Any]:
    return {
        "provider": s.provider,
        "has_key": s.has_key,
        "masked_key": s.masked_key,
        "status": s.status,
        "is_valid": s.is_valid,
        "last_validated": iso(s.last_validated),
        "last_error": s.last_error,
        "models": list(s.models),
        "updated_at": iso(s.updated_at),
        **last_check(s.details),
    }


def key_status(s: KeyStatus) -> dict[str, Any]:
    """A user's status object for one provider."""
    return {
        **_stored(s),
        "source": s.source,
        "expires_at": iso(s.expires_at),
        "expiring_soon": expiring_soon(s.expires_at),
    }


def global_key_status(g: GlobalKeyStatus) -> dict[str, Any]:
    return {**_stored(g.key), "fallback_enabled": g.fallback_enabled}


def provider(p: Provider) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "key_format": p.key_format,
        "docs_url": p.docs_url,
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "help": f.help,
                "kind": f.kind,
                "required": f.required,
                "default": f.default or None,
            }
            for f in p.extra_fields
        ],
    }
