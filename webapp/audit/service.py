"""Recording audit events inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from webapp.audit.models import AuditEvent
from webapp.db_types import utcnow
from webapp.extensions import db

GENESIS_HASH = "0" * 64
OUTCOMES = ("ok", "denied", "failed")
_PG_CHAIN_LOCK = 0x6B6579686F6C64  # any constant; serialises appends to the chain


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from; views build it, services pass it on."""

    ip: str | None = None
    user_agent: str | None = None


def canonical(event: AuditEvent) -> bytes:
    """The content a row's hash covers, independent of engine and column order."""
    payload = {
        "occurred_at": event.occurred_at.isoformat(timespec="microseconds"),
        "actor_user_id": event.actor_user_id,
        "subject_user_id": event.subject_user_id,
        "action": event.action,
        "provider": event.provider,
        "outcome": event.outcome,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": event.details or {},
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(event)).hexdigest()


def _last_hash() -> str:
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
    last = db.session.scalar(db.select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS_HASH


def record(
    action: str,
    *,
    outcome: str = "ok",
    actor_id: int | None = None,
    subject_id: int | None = None,
    provider: str | None = None,
    info: RequestInfo | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit row to the current transaction; the caller commits."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    info = info or RequestInfo()
    event = AuditEvent(
        occurred_at=utcnow(),
        actor_user_id=actor_id,
        subject_user_id=subject_id if subject_id is not None else actor_id,
        action=action,
        provider=provider,
        outcome=outcome,
        ip=(info.ip or None),
        user_agent=(info.user_agent or "")[:200] or None,
        details=details or {},
    )
    event.prev_hash = _last_hash()
    event.row_hash = chain_hash(event.prev_hash, event)
    db.session.add(event)
    db.session.flush()
    return event


def record_failure(action: str, **kwargs: Any) -> None:
    """Record a failed change after its transaction was rolled back, and commit it."""
    db.session.rollback()
    record(action, outcome="failed", **kwargs)
    db.session.commit()
