"""Who a rate limit counts, which limit applies, and what happens when one is hit.

Keys name what they count: ``user:<id>`` for a signed-in user, ``ip:<addr>``
otherwise, ``login-account:<digest>`` for login attempts at one account
(whatever address they come from). Limits are read from the app's config on
every request, so each app (and each test) gets its own.

A hit answers 429 with ``Retry-After`` (Flask-Limiter adds the header; the
error handlers give JSON under /api and the error page elsewhere), writes a
``ratelimit.hit`` log line every time, and an audit row at most once per key
and limit every ``AUDIT_EVERY``: a flood of refused requests cannot turn
into a flood of database writes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import current_app, request
from flask_login import current_user
from limits import parse

if TYPE_CHECKING:
    from flask import Response
    from flask_limiter import RequestLimit

log = logging.getLogger(__name__)

#: how often a limit that keeps being hit by the same key gets another audit row
AUDIT_EVERY = parse("1 per 10 minutes")


def client_ip() -> str:
    # ProxyFix (enabled only by TRUSTED_PROXIES) has already rewritten remote_addr.
    return request.remote_addr or "unknown"


def _signed_in_id() -> int | None:
    if current_user and current_user.is_authenticated:
        return current_user.id
    return None


def default_rate_key() -> str:
    user_id = _signed_in_id()
    return f"user:{user_id}" if user_id is not None else f"ip:{client_ip()}"


def user_rate_key() -> str:
    return default_rate_key()


def ip_rate_key() -> str:
    return f"ip:{client_ip()}"


def account_rate_key(email: str | None) -> str:
    """The key for attempts at one account; a digest keeps addresses out of the store."""
    digest = hashlib.sha256((email or "").strip().lower().encode()).hexdigest()[:32]
    return f"login-account:{digest}"


def retry_after_only_when_refused(response: Response) -> Response:
    """Keep ``Retry-After`` on refusals (429, 503) alone.

    Flask-Limiter puts it, with the budget's reset time, on every response it
    counts; on an answer that went through it would tell a client to wait when
    nothing was refused. The budget itself stays in the ``X-RateLimit-*``
    headers. Registered before Flask-Limiter, so that it runs after it.
    """
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response


def configured(name: str) -> Callable[[], str]:
    """A limit read from the current app's config when a request is checked."""
    return lambda: current_app.config[name]


default_limit = configured("RATELIMIT_DEFAULT")


def on_breach(limit: RequestLimit) -> None:
    """Log every refused request; audit the first of each run."""
    key, scope = limit.request_args[-2], limit.request_args[-1]
    audit = lambda: limit.limiter.hit(AUDIT_EVERY, "ratelimit-audit", limit.key)  # noqa: E731
    refused(key, str(limit.limit), scope, audit, user_id=_signed_in_id())


def refused(
    key: str, limit: str, scope: str, first_of_run: Callable[[], bool], *, user_id: int | None
) -> None:
    """Log a request of ``user_id`` (None: nobody known) refused by the limit ``limit``
    counted under ``key`` (``kind:ident``); audit it if ``first_of_run()`` says no hit of
    that key was audited in AUDIT_EVERY."""
    kind = key.partition(":")[0]
    ip = client_ip()
    reason = f"{kind} limit {limit} on {scope}"
    from webapp import monitoring

    monitoring.security_event(
        "ratelimit.hit",
        f"rate limit hit: {reason}",
        level=logging.WARNING,
        user_id=user_id,
        ip=ip,
        reason=reason,
        limit=limit,
        endpoint=request.endpoint,
    )
    if first_of_run():
        _audit(kind, limit, scope, user_id, ip)


def _audit(kind: str, limit: str, scope: str, user_id: int | None, ip: str) -> None:
    from webapp.audit.service import record
    from webapp.auth.services import find_user
    from webapp.extensions import db
    from webapp.web import request_info

    subject_id = user_id
    try:
        db.session.rollback()  # the request is refused: nothing of it may be committed
        if kind == "login-account" and user_id is None:
            # The account being guessed at sees the attempts in its own activity. Inside the
            # try: an email the database cannot look up (a NUL on PostgreSQL) must not turn
            # the 429 into a 500. Signed in, the budget spent is that account's own (see
            # _password_account_key), whatever email a form carries: the row is filed there.
            account = find_user(request.form.get("email", ""))
            subject_id = account.id if account else None
            db.session.rollback()
        record(
            "ratelimit.hit",
            outcome="denied",
            actor_id=user_id,
            subject_id=subject_id,
            info=request_info(),
            details={"limit": limit, "kind": kind, "endpoint": scope},
        )
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        # A 429 must stay a 429: losing this row is better than failing the answer.
        log.error("could not audit a rate-limit hit: %s", type(exc).__name__)
