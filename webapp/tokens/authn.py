"""Who a bearer token speaks for, and why it is refused when it is.

``authenticate`` only decides: a refusal is raised with its reason and
written nowhere, so that the caller (``bearer.py``) can first count it
against the address's failure budget. ``record_refusal`` then audits
(``token.auth_failed``) and logs it with the reason, while the caller
learns only 401 (no usable token) or 403 (a valid token that may not be
used from this address).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import update

from webapp.audit.service import RequestInfo, record
from webapp.auth.models import User
from webapp.counters import first_refusal
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.tokens import format as token_format
from webapp.tokens import policy
from webapp.tokens.models import ACTIVE, ROTATING, AccessToken

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenIdentity:
    """The token a request was authenticated by; what views and audit rows need of it."""

    id: int
    user_id: int
    hint: str
    scopes: frozenset[str]


class TokenRefused(Exception):
    """``reason`` and ``details`` are for the audit trail and the log; ``status`` is all
    the caller gets. ``owner_id`` is the token's owner when the token was found."""

    def __init__(
        self,
        reason: str,
        status: int = 401,
        *,
        details: dict[str, Any] | None = None,
        owner_id: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.details = {"reason": reason, **(details or {})}
        self.owner_id = owner_id


def authenticate(raw: str, *, info: RequestInfo) -> tuple[TokenIdentity, User]:
    """The token's identity and owner, after every check; raise TokenRefused otherwise."""
    try:
        token = token_format.check(raw)
    except token_format.TokenFormatError as exc:
        # Decided offline: a mistyped or made-up token costs no lookup.
        hint = token_format.hint(raw) if exc.reason == "bad_checksum" else None
        _refuse(exc.reason, hint=hint)
    digest = token_format.token_hash(token)
    candidates = db.session.execute(
        db.select(AccessToken, User)
        .join(User, User.id == AccessToken.user_id)
        .where(AccessToken.token_hint == token_format.hint(token))
    ).all()
    match = None
    for row, owner in candidates:
        if hmac.compare_digest(row.token_hash, digest):
            match = (row, owner)
    if match is None:
        _refuse("unknown", hint=token_format.hint(token))
    row, owner = match
    # The state first: a token that no longer works is a 401 like an unknown one from
    # anywhere, so a 403 tells only the holder of a working token that the address is
    # wrong, and the audit row keeps the real reason.
    state = row.state(utcnow())
    if state not in (ACTIVE, ROTATING):
        _refuse(state, row=row)
    if not policy.ip_allowed(row.allowed_ips, info.ip):
        _refuse("ip_not_allowed", row=row, status=403)
    _mark_used(row.id, info.ip)
    return TokenIdentity(row.id, row.user_id, row.token_hint, frozenset(row.scopes)), owner


def _mark_used(token_id: int, ip: str | None) -> None:
    # One UPDATE in its own short transaction: the use is on record even if the
    # request then fails, and the objects the request holds stay loaded.
    with db.engine.begin() as conn:
        conn.execute(
            update(AccessToken)
            .where(AccessToken.id == token_id)
            .values(
                last_used_at=utcnow(),
                last_used_ip=(ip or None) and ip[:64],
                use_count=AccessToken.use_count + 1,
            )
        )


def _refuse(
    reason: str, *, hint: str | None = None, row: AccessToken | None = None, status: int = 401
) -> NoReturn:
    details: dict[str, Any] = {}
    if row is not None:
        details.update(token_id=row.id, hint=row.token_hint)
    elif hint:
        details["hint"] = hint
    owner = row.user_id if row is not None else None
    raise TokenRefused(reason, status, details=details, owner_id=owner)


def record_refusal(refusal: TokenRefused, info: RequestInfo) -> None:
    """Audit and log a refused token, with the reason the caller is not told."""
    details = refusal.details
    record(
        "token.auth_failed",
        outcome="denied",
        subject_id=refusal.owner_id,
        info=info,
        details=details,
    )
    db.session.commit()
    log.warning(
        "access token refused: %s",
        refusal.reason,
        extra={"event": "token.auth_failed", "ip": info.ip, **details},
    )


def record_scope_denial(
    identity: TokenIdentity, needed: str, endpoint: str, info: RequestInfo
) -> None:
    details = {
        "reason": "token_scope",
        "token_id": identity.id,
        "hint": identity.hint,
        "needed": needed,
        "endpoint": endpoint,
    }
    # One row per token and endpoint every AUDIT_EVERY (a script retrying in a loop is not a
    # write per request); each refusal is logged.
    if first_refusal("token-scope", f"{identity.id}:{endpoint}"):
        record(
            "access.denied", outcome="denied", actor_id=identity.user_id, info=info, details=details
        )
        db.session.commit()
    log.warning(
        "access token %s lacks %s for %s",
        identity.hint,
        needed,
        endpoint,
        extra={"event": "access.denied", "user_id": identity.user_id, "ip": info.ip, **details},
    )
