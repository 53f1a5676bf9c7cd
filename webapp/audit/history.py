"""Reading the audit trail back: a user's own history, or everyone's for an admin.

Pages are newest first and cut by id (the chain's order, which is also time
order: ``record`` takes the time under the chain lock). The next page starts
below the last id shown, so a page costs one indexed query however long the
trail is, and rows written meanwhile never shift what the reader sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from webapp.audit.actions import ACTIONS, FAMILIES
from webapp.audit.models import AuditEvent
from webapp.auth.models import User
from webapp.db_types import INTEGER_MAX, whole_number
from webapp.extensions import db
from webapp.providers.catalog import get_provider

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class BadFilter(Exception):
    """A filter that cannot be applied; ``fields`` says which and why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class EventFilter:
    """What to show. ``subject_id`` None means every user's rows (admins only)."""

    subject_id: int | None
    provider: str | None = None
    action: str | None = None
    before_id: int | None = None
    before_time: datetime | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True)
class EventPage:
    events: list[AuditEvent]
    #: the ``before`` of the next (older) page; None on the last page
    next_before: int | None


def parse_filter(
    subject_id: int | None,
    *,
    provider: str | None = None,
    action: str | None = None,
    before: str | None = None,
    limit: str | int | None = None,
) -> EventFilter:
    """Check filters given as text (a query string or a form); BadFilter lists what is wrong.

    ``action`` is one action (``key.set``) or a family (``key``); ``before``
    is an event id (the ``next_before`` of a page) or an ISO 8601 time.
    """
    problems: dict[str, str] = {}
    provider = provider or None
    if provider is not None and get_provider(provider) is None:
        problems["provider"] = "Unknown provider."
    action = action or None
    if action is not None and action not in ACTIONS and action not in FAMILIES:
        problems["action"] = "Unknown action."
    before_id, before_time = None, None
    if before:
        before_id, before_time = _parse_before(before, problems)
    count = DEFAULT_LIMIT
    if limit not in (None, ""):
        # ASCII digits only: int() would also take " 5", "1_0" and other scripts' digits.
        count = limit if isinstance(limit, int) else (whole_number(limit, MAX_LIMIT) or 0)
        if not 1 <= count <= MAX_LIMIT:
            problems["limit"] = f"A whole number from 1 to {MAX_LIMIT}."
    if problems:
        raise BadFilter(problems)
    return EventFilter(subject_id, provider, action, before_id, before_time, count)


def _parse_before(value: str, problems: dict[str, str]) -> tuple[int | None, datetime | None]:
    if value.isascii() and value.isdigit():
        # Past the largest id there is no event: a clear 400, not a database error.
        number = whole_number(value, INTEGER_MAX)
        if number is not None and number >= 1:
            return number, None
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                problems["before"] = "Give the time zone, e.g. 2026-01-31T12:00:00Z."
                return None, moment
            try:
                return None, moment.astimezone(UTC)
            except OverflowError:  # within hours of year 1 or 9999, which UTC cannot hold
                problems["before"] = "Give a time between the years 1 and 9999 in UTC."
                return None, None
    problems.setdefault("before", "An event id, or a time such as 2026-01-31T12:00:00Z.")
    return None, None


def list_events(f: EventFilter) -> EventPage:
    """One page of events matching ``f``, newest first."""
    query = db.select(AuditEvent)
    if f.subject_id is not None:
        query = query.where(AuditEvent.subject_user_id == f.subject_id)
    if f.provider is not None:
        query = query.where(AuditEvent.provider == f.provider)
    if f.action in ACTIONS:
        query = query.where(AuditEvent.action == f.action)
    elif f.action is not None:
        query = query.where(AuditEvent.action.startswith(f.action + ".", autoescape=True))
    if f.before_id is not None:
        query = query.where(AuditEvent.id < f.before_id)
    if f.before_time is not None:
        query = query.where(AuditEvent.occurred_at < f.before_time)
    # One row more than asked for tells whether an older page exists.
    rows = list(db.session.scalars(query.order_by(AuditEvent.id.desc()).limit(f.limit + 1)))
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return EventPage(rows, rows[-1].id if more and rows else None)


def find_subject(value: str) -> int:
    """The user id an admin's ``user`` filter names: an id or an email address.

    A user who no longer exists can still be named by id: the trail keeps
    their rows.
    """
    value = value.strip()
    number = whole_number(value, INTEGER_MAX)  # past the largest id: nobody
    if number is not None and number >= 1:
        return number
    user = db.session.scalar(db.select(User).filter_by(email=value.lower()))
    if user is None:
        raise BadFilter({"user": "No user with that email address (give an id for a deleted one)."})
    return user.id


def emails_of(events: list[AuditEvent]) -> dict[int, str]:
    """Email addresses of the users a page of events names, in one query."""
    ids = {e.actor_user_id for e in events} | {e.subject_user_id for e in events}
    ids.discard(None)
    if not ids:
        return {}
    rows = db.session.execute(db.select(User.id, User.email).where(User.id.in_(ids)))
    return {user_id: email for user_id, email in rows}
