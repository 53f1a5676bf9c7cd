"""Expiry reminders: the date a user expects a key to stop working.

Keyhold cannot know when a provider will expire a key; the user tells it,
and the dashboard and the API flag keys whose date is near (or past). The
date is kept as midnight UTC of the day given.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from webapp.audit.service import RequestInfo, audited, record
from webapp.auth.models import User
from webapp.crypto import fingerprint
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys.errors import InvalidKeyInput, KeyNotFound, KeyReplaced
from webapp.keys.models import UserAPIKey
from webapp.keys.service import get_user_key_row
from webapp.keys.statuses import KeyStatus, list_status
from webapp.providers.catalog import provider_name

log = logging.getLogger(__name__)

#: a key whose date is this close (or past) is flagged as expiring soon
WARNING = timedelta(days=7)
#: how far ahead a reminder may be set
MAX_AHEAD = timedelta(days=3650)
#: ``days`` a caller may ask ``expiring`` about
MAX_DAYS = 3650


def expiring_soon(expires_at: datetime | None, now: datetime | None = None) -> bool:
    return expires_at is not None and expires_at <= (now or utcnow()) + WARNING


def days_left(expires_at: datetime, now: datetime | None = None) -> int:
    """Whole days from today (UTC) to the date; negative once it has passed."""
    return (expires_at.date() - (now or utcnow()).date()).days


def _utc_day(moment: datetime) -> date:
    if moment.tzinfo is None:
        return moment.date()
    try:
        return moment.astimezone(UTC).date()
    except OverflowError:  # within hours of year 1 or 9999: out of range by a day's error
        return moment.date()


def parse_expiry(value: Any, field: str = "expires_at") -> datetime | None:
    """A reminder date from a form or JSON: a ``date``, ``YYYY-MM-DD`` or ISO time, or None.

    Raises InvalidKeyInput (with ``field``) for anything else, a day already
    past (yesterday is accepted: it may still be today somewhere), or a day
    more than ten years ahead.
    """
    if value is None:  # an empty form field arrives as None too; "" from JSON is no date
        return None
    day: date | None = None
    if isinstance(value, datetime):
        day = _utc_day(value)
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                moment = None
            if moment is not None:
                day = _utc_day(moment)
    if day is None:
        raise InvalidKeyInput(
            "The expiry date was not understood.", {field: "Give a date such as 2027-01-31."}
        )
    today = utcnow().date()
    if day < today - timedelta(days=1):
        raise InvalidKeyInput("The expiry date is in the past.", {field: "Pick a future date."})
    if day > today + MAX_AHEAD:
        raise InvalidKeyInput(
            "The expiry date is too far ahead.", {field: "Pick a date within ten years."}
        )
    return datetime.combine(day, time(), tzinfo=UTC)


def set_expiry(
    user: User,
    provider_id: str,
    expires_at: datetime | None,
    *,
    info: RequestInfo | None = None,
    shown: str | None = None,
) -> None:
    """Set or clear the reminder on the user's stored key (already parsed); with ``shown``
    (the fingerprint of the key a page showed), only if it is still that key: ``KeyReplaced``
    otherwise."""
    row = get_user_key_row(user, provider_id)
    if shown is not None and shown != fingerprint(row.key_hash):
        raise KeyReplaced(
            f"Your {provider_name(provider_id)} key was replaced after this page was shown; "
            "its reminder was not changed. This is the key stored now."
        )
    before = row.expires_at
    details = {
        "hint": row.key_hint,
        "fingerprint": fingerprint(row.key_hash),
        "from": before.date().isoformat() if before else None,
        "to": expires_at.date().isoformat() if expires_at else None,
    }
    user_id = user.id
    with audited(
        "key.expiry", refusals=(KeyNotFound,), actor_id=user_id, provider=provider_id, info=info
    ):
        # Changing the reminder is not storing the key: updated_at stays as it was. Only on
        # the key that was read: one deleted or replaced meanwhile (another tab) is not it.
        changed = db.session.execute(
            db.update(UserAPIKey)
            .where(UserAPIKey.id == row.id, UserAPIKey.key_hash == row.key_hash)
            .values(expires_at=expires_at, updated_at=UserAPIKey.updated_at),
            execution_options={"synchronize_session": False},
        ).rowcount
        if not changed:
            raise KeyNotFound(
                f"Your {provider_name(provider_id)} key was deleted or replaced meanwhile; "
                "nothing was changed."
            )
        record("key.expiry", actor_id=user_id, provider=provider_id, info=info, details=details)


def expiring(user: User, days: int) -> list[KeyStatus]:
    """The user's keys whose reminder falls within ``days`` from now (or has passed)."""
    cutoff = utcnow() + timedelta(days=days)
    found = [s for s in list_status(user) if s.expires_at is not None and s.expires_at <= cutoff]
    return sorted(found, key=lambda s: (s.expires_at, s.provider))
