"""Recording audit events inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from webapp.audit.actions import ACTIONS
from webapp.audit.models import AuditCheckpoint, AuditEvent
from webapp.db_types import utcnow
from webapp.extensions import db

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
OUTCOMES = ("ok", "denied", "failed")
_PG_CHAIN_LOCK = 0x6B6579686F6C64  # any constant; serialises appends to the chain


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from; views build it, services pass it on."""

    ip: str | None = None
    user_agent: str | None = None
    # The access token a script's request was authenticated by: every row it causes names it,
    # so its owner can tell which token to revoke.
    token_id: int | None = None
    token_hint: str | None = None


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


def lock_chain() -> None:
    """Hold the right to append to the chain until the current transaction ends.

    Pending changes are flushed first, so the chain lock is always the last lock
    a transaction takes: a transaction that locked a key row and then waits here
    can never be waited on by one that holds the chain and wants that row.
    PostgreSQL gets a transaction-scoped advisory lock. SQLite gets its database
    write lock through a write that changes nothing: without it two writers can
    both read the same last hash before either inserts, and the chain forks.
    """
    db.session.flush()
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHAIN_LOCK})
    else:
        db.session.execute(text("UPDATE audit_checkpoints SET id = id WHERE 1 = 0"))


def last_hash() -> str:
    """The hash the next row chains to; call with the chain locked."""
    last = db.session.scalar(db.select(AuditEvent.row_hash).order_by(AuditEvent.id.desc()).limit(1))
    if last is not None:
        return last
    # Everything was pruned: the chain continues from the newest checkpoint.
    checkpoint = db.session.scalar(
        db.select(AuditCheckpoint.last_pruned_hash)
        .order_by(AuditCheckpoint.last_pruned_id.desc())
        .limit(1)
    )
    return checkpoint or GENESIS_HASH


def _with_token(details: dict[str, Any], info: RequestInfo) -> dict[str, Any]:
    if info.token_id is None:
        return details
    return {"token_id": info.token_id, "token_hint": info.token_hint, **details}


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
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: list it in audit/actions.py")
    info = info or RequestInfo()
    lock_chain()
    event = AuditEvent(
        # Taken under the lock, so time order and chain (id) order agree.
        occurred_at=utcnow(),
        actor_user_id=actor_id,
        subject_user_id=subject_id if subject_id is not None else actor_id,
        action=action,
        provider=provider,
        outcome=outcome,
        ip=(info.ip or "")[:64] or None,
        user_agent=(info.user_agent or "")[:200] or None,
        details=_with_token(details or {}, info),
    )
    event.prev_hash = last_hash()
    event.row_hash = chain_hash(event.prev_hash, event)
    db.session.add(event)
    db.session.flush()
    return event


def record_failure(action: str, **kwargs: Any) -> None:
    """Roll back a change that failed and commit a ``failed`` row in its place.

    Called from an ``except`` block that re-raises: if even the failed row
    cannot be written (the database is gone), that is logged rather than
    raised, so the caller's original error is the one that propagates.
    """
    db.session.rollback()
    try:
        record(action, outcome="failed", **kwargs)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        # The type only: a driver's message can carry the statement's parameters.
        log.error(
            "could not record the failure of %s: %s",
            action,
            type(exc).__name__,
            extra={"event": "audit.write_failed", "action": action},
        )


@contextmanager
def audited(
    action: str, *, refusals: tuple[type[Exception], ...] = (), **kwargs: Any
) -> Iterator[None]:
    """Commit the block's change (which records its own audit row) or roll it back.

    Any error inside the block, the audit write included, undoes the whole
    change and leaves a ``failed`` row for ``action`` with ``kwargs``. The
    exceptions in ``refusals`` answer the request instead of failing it (an
    email already taken): they undo the change and propagate without a row.
    """
    try:
        yield
        db.session.commit()
    except refusals:
        db.session.rollback()
        raise
    except Exception:
        record_failure(action, **kwargs)
        raise
