"""Checking the audit chain (``flask audit verify``) and pruning it (``flask audit prune``).

Each row's ``row_hash`` covers its content and the previous row's hash, so a
row edited in place no longer matches its own hash, and a row deleted from
the middle leaves the next one pointing at a hash that is not there. Pruning
deletes the oldest rows and leaves a checkpoint (the last pruned row's id and
hash) where the surviving chain starts; the prune's own ``audit.prune`` row
repeats the checkpoint inside the chain, so a forged checkpoint shows too.

What the chain cannot show on its own: rows cut from the end, or a whole tail
rewritten with recomputed hashes by someone with write access to the table.
``flask audit verify`` prints the head's id and hash so an operator can record
them elsewhere and compare later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func

from webapp.audit.models import AuditCheckpoint, AuditEvent
from webapp.audit.service import GENESIS_HASH, chain_hash, lock_chain, record
from webapp.db_types import utcnow
from webapp.extensions import db

PRUNE_ACTION = "audit.prune"


@dataclass(frozen=True)
class ChainProblem:
    row_id: int | None
    kind: str  # changed, deleted, relinked, checkpoint
    message: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    start: str
    head_id: int | None
    head_hash: str
    problem: ChainProblem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class ChainBroken(Exception):
    def __init__(self, problem: ChainProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def latest_checkpoint() -> AuditCheckpoint | None:
    return db.session.scalar(
        db.select(AuditCheckpoint).order_by(AuditCheckpoint.last_pruned_id.desc()).limit(1)
    )


def _missing(after: int, before: int) -> str:
    first, last = after + 1, before - 1
    if first == last:
        return f"row #{first} was deleted"
    return f"rows #{first}-#{last} were deleted"


def _link_problem(row: Any, prev_id: int | None) -> ChainProblem:
    """Why ``row`` does not link to the row (or checkpoint) before it."""
    if prev_id is None:
        return ChainProblem(
            row.id, "deleted", f"rows before #{row.id} were deleted (no checkpoint covers them)"
        )
    if row.id - prev_id > 1:
        return ChainProblem(
            prev_id + 1,
            "deleted",
            f"{_missing(prev_id, row.id)} (#{row.id} no longer links to #{prev_id})",
        )
    return ChainProblem(
        prev_id,
        "relinked",
        f"row #{prev_id} was changed and its hash recomputed (#{row.id} no longer links to it)",
    )


def _checkpoint_problem(checkpoint: AuditCheckpoint) -> ChainProblem | None:
    """A checkpoint must be confirmed by the ``audit.prune`` row written with it."""
    prunes = db.session.execute(
        db.select(AuditEvent.id, AuditEvent.details)
        .where(AuditEvent.action == PRUNE_ACTION, AuditEvent.outcome == "ok")
        .order_by(AuditEvent.id.desc())
    )
    for _, details in prunes:
        details = details or {}
        if (
            details.get("through_id") == checkpoint.last_pruned_id
            and details.get("last_hash") == checkpoint.last_pruned_hash
        ):
            return None
    return ChainProblem(
        None,
        "checkpoint",
        f"checkpoint {checkpoint.id} (rows up to #{checkpoint.last_pruned_id} pruned) "
        "is not confirmed by any audit.prune row",
    )


def _walk(checkpoint: AuditCheckpoint | None, upto_id: int | None, batch_size: int) -> ChainReport:
    expected = checkpoint.last_pruned_hash if checkpoint else GENESIS_HASH
    prev_id = checkpoint.last_pruned_id if checkpoint else None
    start = f"checkpoint after #{prev_id}" if checkpoint else "the first row"
    table = AuditEvent.__table__
    checked, last_id = 0, 0
    while True:
        query = db.select(table).where(table.c.id > last_id).order_by(table.c.id)
        if upto_id is not None:
            query = query.where(table.c.id <= upto_id)
        rows = db.session.execute(query.limit(batch_size)).all()
        if not rows:
            return ChainReport(checked, start, prev_id, expected)
        for row in rows:
            if chain_hash(row.prev_hash, row) != row.row_hash:
                problem = ChainProblem(
                    row.id, "changed", f"row #{row.id} was changed (it no longer matches its hash)"
                )
                return ChainReport(checked, start, prev_id, expected, problem)
            if row.prev_hash != expected:
                return ChainReport(checked, start, prev_id, expected, _link_problem(row, prev_id))
            expected, prev_id = row.row_hash, row.id
            checked += 1
        last_id = rows[-1].id


def verify_chain(*, upto_id: int | None = None, batch_size: int = 1000) -> ChainReport:
    """Walk the chain from its start (or the newest checkpoint) and report the first break."""
    for _ in range(3):
        checkpoint = latest_checkpoint()
        report = _walk(checkpoint, upto_id, batch_size)
        # Also before a prune (upto_id): a prune over a forged checkpoint would confirm it
        # with a genuine one of its own, and later checks would find nothing wrong.
        if report.ok and checkpoint is not None:
            problem = _checkpoint_problem(checkpoint)
            if problem is not None:
                report = ChainReport(report.checked, report.start, None, "", problem)
        newest = latest_checkpoint()
        if (newest and newest.id) != (checkpoint and checkpoint.id):
            # A prune (cron, elsewhere) committed meanwhile: it moved the start, and took the
            # audit.prune row that confirmed the old checkpoint with the rows it deleted.
            # Whatever this walk found, it is about a trail that is no longer there.
            continue
        return report
    return report


@dataclass(frozen=True)
class PruneReport:
    pruned: int
    through_id: int | None = None


def prune(older_than: timedelta, *, force: bool = False) -> PruneReport:
    """Delete the rows older than ``older_than`` and leave a checkpoint.

    Only a prefix of the chain goes (every row before the first one that is
    young enough), and the newest row always stays, so the chain keeps a head.
    Refuses, unless ``force``, when the rows about to go do not verify: pruning
    must not destroy the evidence of tampering.
    """
    cutoff = utcnow() - older_than
    newest = db.session.scalar(db.select(func.max(AuditEvent.id)))
    first_young = db.session.scalar(
        db.select(func.min(AuditEvent.id)).where(AuditEvent.occurred_at >= cutoff)
    )
    if newest is None:
        return PruneReport(0)
    boundary = min(first_young or newest, newest)
    report = verify_chain(upto_id=boundary)
    if not report.ok and not force:
        raise ChainBroken(report.problem)  # type: ignore[arg-type]
    lock_chain()
    last = db.session.execute(
        db.select(AuditEvent.id, AuditEvent.row_hash)
        .where(AuditEvent.id < boundary)
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    if last is None:
        db.session.rollback()
        return PruneReport(0)
    deleted = db.session.execute(db.delete(AuditEvent).where(AuditEvent.id <= last.id)).rowcount
    db.session.add(
        AuditCheckpoint(last_pruned_id=last.id, last_pruned_hash=last.row_hash, rows_pruned=deleted)
    )
    details: dict[str, Any] = {
        "rows": deleted,
        "through_id": last.id,
        "last_hash": last.row_hash,
        "older_than_days": older_than.days,
    }
    if not report.ok:
        details["forced_past"] = report.problem.message  # type: ignore[union-attr]
    record(PRUNE_ACTION, details=details)
    db.session.commit()
    return PruneReport(deleted, last.id)
