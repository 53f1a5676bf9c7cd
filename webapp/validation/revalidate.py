"""``flask keys revalidate``: re-check stored keys, users' and global, for cron.

Keys are read in batches by id (so memory does not grow with the table and
a long run never holds one huge transaction); each batch is checked in the
bounded pool that validate-all uses, then its statuses and audit rows are
committed together. A provider that is down or slow leaves a key's known
validity as it was: only the provider's own rejection marks a key invalid.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from webapp import monitoring
from webapp.audit.service import RequestInfo, record_failure
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey, UserAPIKey
from webapp.keys.service import decrypt_global, decrypt_row
from webapp.keys.verdicts import apply_check, record_check
from webapp.providers.catalog import INVALID
from webapp.validation.service import Job, check_in_parallel, jobs_for, jobs_still_held

log = logging.getLogger(__name__)

#: the two kinds of stored key, how to read each, and whose history a check goes to
_KINDS: tuple[tuple[str, type, Callable[[Any], str]], ...] = (
    ("user", UserAPIKey, decrypt_row),
    ("global", GlobalAPIKey, decrypt_global),
)


@dataclass
class RevalidateReport:
    checked: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    #: keys the provider rejected that were not known to be invalid before ("user 3 openai")
    turned_invalid: list[str] = field(default_factory=list)
    #: rows that could not be decrypted (tampered with, or under a retired secret)
    unreadable: list[str] = field(default_factory=list)
    #: keys replaced or deleted while they were being checked: left as their own change left them
    superseded: int = 0


def _label(kind: str, row: Any) -> str:
    return f"user {row.user_id} {row.provider}" if kind == "user" else f"global {row.provider}"


def _batch(model: type, after: int, size: int, cutoff: datetime | None, provider: str | None):
    query = db.select(model).where(model.id > after)
    if provider is not None:
        query = query.where(model.provider == provider)
    if cutoff is not None:
        query = query.where(db.or_(model.last_validated.is_(None), model.last_validated < cutoff))
    return list(db.session.scalars(query.order_by(model.id).limit(size)))


def revalidate(
    *,
    older_than: timedelta | None = None,
    provider: str | None = None,
    batch_size: int = 50,
    info: RequestInfo | None = None,
    progress: Callable[[int], None] | None = None,
) -> RevalidateReport:
    """Check every stored key not checked within ``older_than`` (all of them with None)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = utcnow() - older_than if older_than is not None else None
    report = RevalidateReport()
    for kind, model, decrypt in _KINDS:
        after = 0
        while rows := _batch(model, after, batch_size, cutoff, provider):
            after = rows[-1].id
            jobs, unreadable = jobs_for(rows, decrypt)
            for row in unreadable:
                report.unreadable.append(f"{_label(kind, row)} (#{row.id})")
                log.error("not re-checked, unreadable: %s", _label(kind, row))
            results = check_in_parallel(jobs)
            _record(kind, jobs, results, info, report)
            db.session.expunge_all()  # the batch is done: let its rows (and keys) go
            if progress is not None:
                progress(len(rows))
    return report


def _record(
    kind: str, jobs: list[Job], results: list, info: RequestInfo | None, report: RevalidateReport
) -> None:
    # Read before the commit, which expires the rows: no reload per row afterwards.
    owners = [job.row.user_id if kind == "user" else None for job in jobs]
    providers = [job.row.provider for job in jobs]
    turned = []
    try:
        held = jobs_still_held(jobs)
        for job, result, owner, keep in zip(jobs, results, owners, held, strict=True):
            if not keep:  # replaced or deleted while it was being checked
                continue
            was_invalid = job.row.is_valid is False
            apply_check(job.row, result)
            record_check(
                job.row, result, actor_id=None, subject_id=owner, info=info, trigger="revalidate"
            )
            if result.status == INVALID and not was_invalid:
                turned.append(_label(kind, job.row))
        db.session.commit()
    except Exception:
        record_failure("key.validate", info=info, details={"trigger": "revalidate"})
        raise
    report.turned_invalid.extend(turned)
    for result, owner, provider, keep in zip(results, owners, providers, held, strict=True):
        if not keep:
            report.superseded += 1
            continue
        report.checked += 1
        report.by_status[result.status] += 1
        monitoring.key_checked(owner, provider, result, ip=None, trigger="revalidate")
