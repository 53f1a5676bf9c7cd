"""Checking stored keys against their providers: one key, or all of a user's at once.

Checks of several keys run in a bounded thread pool: the threads only make
HTTP requests and read the answers; decrypting, writing the results and the
audit rows happen in the calling thread, in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from webapp import monitoring
from webapp.audit.service import RequestInfo, audited, record, record_failure
from webapp.auth.models import User
from webapp.crypto import KeyDecryptionError
from webapp.extensions import db
from webapp.keys.inputs import require_provider
from webapp.keys.models import UserAPIKey
from webapp.keys.service import decrypt_row, get_user_key_row
from webapp.keys.verdicts import apply_check, record_check, still_held
from webapp.providers.catalog import (
    FORBIDDEN,
    INVALID,
    NETWORK_ERROR,
    PROVIDER_ERROR,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    VALID,
    Provider,
    get_provider,
    provider_name,
)
from webapp.providers.checks import app_checker
from webapp.providers.classify import CheckResult, no_answer
from webapp.providers.client import NoAnswer
from webapp.templating import status_label

log = logging.getLogger(__name__)

#: how long validate-all waits beyond its checks' own deadlines before giving up on one
_GRACE = 2.0


def validate_key(
    user: User, provider_id: str, *, deep: bool = False, info: RequestInfo | None = None
) -> CheckResult:
    """Check the user's stored key for ``provider_id`` and record the outcome."""
    provider = require_provider(provider_id)
    row = get_user_key_row(user, provider_id)
    trigger = "deep" if deep else "manual"
    try:
        key = decrypt_row(row)
    except KeyDecryptionError:
        record_failure("key.validate", **_unreadable(user, row, info, trigger))
        raise
    job = Job.of(row, provider, key)
    result = app_checker().check(provider, key, job.config, deep=deep, known_models=job.models)
    _record(user, [job], [result], info, trigger=trigger)
    return result


def _unreadable(user: User, row: UserAPIKey, info: RequestInfo | None, trigger: str) -> dict:
    """The audit row of a check that could not start: the stored key does not decrypt."""
    log.error("the %s key of user %s could not be decrypted to check", row.provider, user.id)
    details = {"trigger": trigger, "reason": "key_unreadable"}
    return {"actor_id": user.id, "provider": row.provider, "info": info, "details": details}


@dataclass(frozen=True)
class Job:
    """One stored key to check: its row (a user's or a global key), its plaintext, and what
    the check needs of the row as it was read: its settings and known models (the row may
    hold another key by the time it answers, or be gone)."""

    row: Any
    provider: Provider
    key: str = field(repr=False)
    config: dict[str, Any]
    models: list[str]

    @classmethod
    def of(cls, row: Any, provider: Provider, key: str) -> Job:
        """A job for ``row``'s ``key``, with the row's settings and models as read now."""
        return cls(row, provider, key, dict(row.config or {}), list(row.models or []))


def jobs_for(rows: Iterable[Any], decrypt: Callable[[Any], str]) -> tuple[list[Job], list[Any]]:
    """A job for each row whose provider is known, and the rows that failed to decrypt."""
    jobs, unreadable = [], []
    for row in rows:
        provider = get_provider(row.provider)
        if provider is None:
            continue
        try:
            jobs.append(Job.of(row, provider, decrypt(row)))
        except KeyDecryptionError:
            unreadable.append(row)
    return jobs, unreadable


def jobs_still_held(jobs: list[Job]) -> list[bool]:
    """For each job, whether its row still holds the key and settings it checked
    (``still_held``: the rows are held until the caller commits)."""
    return still_held([(job.row, job.key, job.config) for job in jobs])


def check_in_parallel(jobs: list[Job]) -> list[CheckResult]:
    """Ask the providers about ``jobs`` in a bounded thread pool; results in the same order.

    The threads only send requests and read answers. Each check keeps its own
    deadline; the wait here is bounded even if one does not, so a stuck check
    costs its result (a network error), not the caller.
    """
    if not jobs:
        return []
    checker = app_checker()
    workers = max(1, min(len(jobs), int(current_app.config["VALIDATION_MAX_WORKERS"])))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keyhold-check")
    try:
        start = time.monotonic()
        futures = [
            pool.submit(checker.check, job.provider, job.key, job.config, known_models=job.models)
            for job in jobs
        ]
        rounds = -(-len(jobs) // workers)
        wait_until = start + rounds * checker.http.timeout + _GRACE
        return [_outcome(future, wait_until, start) for future in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class AllChecked:
    """What checking all of a user's keys found: provider id -> result, and the providers
    whose stored key could not be decrypted (not checked)."""

    results: dict[str, CheckResult]
    unreadable: list[str]


def validate_all(user: User, *, info: RequestInfo | None = None) -> AllChecked:
    """Check every stored key of ``user`` in parallel."""
    rows = db.session.scalars(
        db.select(UserAPIKey).filter_by(user_id=user.id).order_by(UserAPIKey.provider)
    ).all()
    jobs, unreadable = jobs_for(rows, decrypt_row)
    skipped = [row.provider for row in unreadable]
    if unreadable:
        with audited("key.validate", actor_id=user.id, info=info, details={"trigger": "all"}):
            for row in unreadable:
                record("key.validate", outcome="failed", **_unreadable(user, row, info, "all"))
    if not jobs:
        return AllChecked({}, skipped)
    providers = [job.provider.id for job in jobs]
    results = check_in_parallel(jobs)
    _record(user, jobs, results, info, trigger="all")
    return AllChecked(dict(zip(providers, results, strict=True)), skipped)


def _outcome(future: Future[CheckResult], wait_until: float, start: float) -> CheckResult:
    try:
        return future.result(timeout=max(0.0, wait_until - time.monotonic()))
    except FutureTimeout:
        future.cancel()
        waited = time.monotonic() - start
        message = f"The check did not finish within {waited:.0f} s and was abandoned."
        return no_answer(NoAnswer("timeout", message, int(waited * 1000)))
    except Exception as exc:  # one check gone wrong must not take the others' results with it
        log.error("a key check failed inside Keyhold: %s", type(exc).__name__)
        waited = int((time.monotonic() - start) * 1000)
        return no_answer(NoAnswer("error", "The check could not be completed.", waited))


def _record(
    user: User,
    jobs: list[Job],
    results: list[CheckResult],
    info: RequestInfo | None,
    *,
    trigger: str,
) -> None:
    """Record each job's result on the key it was about; a key replaced or deleted meanwhile
    keeps what it has (its own save recorded its own check)."""
    user_id = user.id
    details = {"trigger": trigger}
    with audited("key.validate", actor_id=user_id, info=info, details=details):
        held = jobs_still_held(jobs)
        for job, result, keep in zip(jobs, results, held, strict=True):
            if keep:
                apply_check(job.row, result)
                record_check(job.row, result, actor_id=user_id, info=info, trigger=trigger)
    for job, result, keep in zip(jobs, results, held, strict=True):
        if not keep:
            log.info("the %s key of user %s changed during its check", job.provider.id, user_id)
            continue
        monitoring.key_checked(
            user_id, job.provider.id, result, ip=info.ip if info else None, trigger=trigger
        )


def summary(provider: Provider, result: CheckResult) -> tuple[str, str]:
    """A flash category and sentence saying what the provider said."""
    name, said = provider.name, result.describe()
    if result.status == VALID:
        text = f"{name} accepted your key."
        if result.models:
            text += f" It can use {len(result.models)} models."
        if not result.quota_checked:
            text += " Its credit was not checked."
        return "success", f"{text} {said}".strip()
    texts = {
        INVALID: ("error", f"{name} rejected your key."),
        FORBIDDEN: ("warning", f"Your {name} key works but is not permitted to do this."),
        QUOTA_EXCEEDED: ("warning", f"Your {name} key works but has no credit left."),
        RATE_LIMITED: ("warning", f"{name} throttled the check; try again later."),
    }
    if not result.key_judged:
        texts[result.status] = ("warning", f"{name} refused the check before looking at your key.")
    category, text = texts.get(result.status, ("warning", f"Your {name} key could not be checked."))
    return category, f"{text} {said}".strip()


def summary_of_all(checked: AllChecked) -> tuple[str, str]:
    """A flash category and sentence for checking all of a user's keys."""
    results = checked.results
    unreadable = ""
    if checked.unreadable:
        names = ", ".join(provider_name(provider) for provider in checked.unreadable)
        unreadable = (
            f"Could not decrypt (not checked): {names}. The operator has been notified; "
            "saving the key again will fix it."
        )
    if not results:
        return (
            ("error", unreadable) if unreadable else ("info", "You have no stored keys to check.")
        )
    counts: dict[str, int] = {}
    for result in results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    parts = ", ".join(f"{n} {status_label(s).lower()}" for s, n in sorted(counts.items()))
    text = f"Checked {len(results)} key(s): {parts}."
    return ("warning", f"{text} {unreadable}") if unreadable else ("info", text)


def saved_message(provider: Provider, row: UserAPIKey, created: bool) -> tuple[str, str]:
    """The flash after saving a key: what was stored and what the provider said of it."""
    text = f"Your {provider.name} key was {'added' if created else 'replaced'}."
    said = row.last_error or ""
    if row.status in (PROVIDER_ERROR, NETWORK_ERROR):
        return f"{text} It could not be checked, so its state is unknown. {said}".strip(), "warning"
    if row.status == VALID:
        extra = f" {provider.name} accepted it"
        extra += f" ({len(row.models)} models)." if row.models else "."
        if not (row.details or {}).get("quota_checked"):
            extra += " Its credit was not checked."
        return text + extra, "success"
    if row.status == "unchecked":
        return text, "success"
    return f"{text} Status: {status_label(row.status)}. {said}".strip(), "warning"
