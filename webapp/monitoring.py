"""Security events for whoever watches the logs.

Failed logins, refused access, failed key checks and rate-limit hits each
become one log line on the ``webapp.security`` logger (one JSON object per
line with ``LOG_FORMAT=json``) carrying ``event``, ``user_id``, ``ip`` and
``reason``. Callers pass ids, statuses and reasons only: never a key, a
password, a token or a submitted email address.

Repeated login failures for one account are counted from the audit trail
(the ``auth.login``/``denied`` rows on the account, through the index on
subject and time), so the count is the same in every gunicorn worker and on
every server sharing the database; each failure at or past
``LOGIN_FAILURE_WARN_AFTER`` within ``LOGIN_FAILURE_WINDOW`` seconds is
logged as a warning.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import func

from webapp.audit.models import AuditEvent
from webapp.db_types import utcnow
from webapp.extensions import db

if TYPE_CHECKING:
    from webapp.providers.classify import CheckResult

log = logging.getLogger("webapp.security")


def security_event(
    event: str,
    message: str,
    *,
    level: int = logging.INFO,
    user_id: int | None = None,
    ip: str | None = None,
    reason: str | None = None,
    **fields: Any,
) -> None:
    """One structured log line; ``fields`` must hold nothing secret."""
    log.log(
        level,
        message,
        extra={"event": event, "user_id": user_id, "ip": ip, "reason": reason, **fields},
    )


def recent_login_failures(user_id: int) -> int:
    """Denied logins on the account within the configured window, this one included."""
    since = utcnow() - timedelta(seconds=current_app.config["LOGIN_FAILURE_WINDOW"])
    return (
        db.session.scalar(
            db.select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.subject_user_id == user_id,
                AuditEvent.occurred_at >= since,
                AuditEvent.action == "auth.login",
                AuditEvent.outcome == "denied",
            )
        )
        or 0
    )


def login_failed(user_id: int | None, ip: str | None, reason: str) -> None:
    """Log a failed login; a warning once the account has failed repeatedly."""
    if user_id is not None:
        failures = recent_login_failures(user_id)
        if failures >= current_app.config["LOGIN_FAILURE_WARN_AFTER"]:
            security_event(
                "auth.login_failures_repeated",
                f"{failures} failed logins for user {user_id} within "
                f"{current_app.config['LOGIN_FAILURE_WINDOW']} s",
                level=logging.WARNING,
                user_id=user_id,
                ip=ip,
                reason=reason,
                failures=failures,
                window_seconds=current_app.config["LOGIN_FAILURE_WINDOW"],
            )
            return
    security_event("auth.login_failed", "login failed", user_id=user_id, ip=ip, reason=reason)


def access_denied(user_id: int | None, ip: str | None, reason: str, **fields: Any) -> None:
    security_event(
        "access.denied",
        f"access denied: {reason}",
        level=logging.WARNING,
        user_id=user_id,
        ip=ip,
        reason=reason,
        **fields,
    )


def validation_failed(
    user_id: int | None, ip: str | None, provider: str, status: str, **fields: Any
) -> None:
    security_event(
        "key.validation_failed",
        f"{provider} key check failed: {status}",
        level=logging.WARNING,
        user_id=user_id,
        ip=ip,
        reason=status,
        provider=provider,
        **fields,
    )


def key_checked(
    user_id: int | None, provider: str, result: CheckResult, *, ip: str | None, **fields: Any
) -> None:
    """A key check's outcome: valid at INFO, anything else as ``key.validation_failed``."""
    if result.status == "valid":
        log.info(
            "%s key check for user %s: valid (HTTP %s, %d ms)",
            provider,
            user_id,
            result.http_status,
            result.elapsed_ms,
            extra={"event": "key.validate", "user_id": user_id, "provider": provider},
        )
        return
    validation_failed(
        user_id,
        ip,
        provider,
        result.status,
        http_status=result.http_status,
        elapsed_ms=result.elapsed_ms,
        said=result.describe()[:300] or None,
        **fields,
    )
