"""``keys:resolve``: a user's own backend services fetch the key the app would use.

This is the one place a stored key's plaintext leaves Keyhold after it was
saved, so it is narrow: only for a request authenticated by an access token
that carries the scope (never for a browser session), only the owner's own
key unless the admin allows handing out global keys too. Every key handed out
leaves an audit row; a call that hands nothing out leaves one too, except when
the same caller was refused the same way within the last ten minutes (a script
polling for a key that is not there): those are logged, as every call is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from werkzeug.exceptions import HTTPException

from webapp.audit.service import RequestInfo, record
from webapp.auth.models import User
from webapp.counters import first_refusal
from webapp.crypto import KeyDecryptionError, mask_key
from webapp.errors import CODES
from webapp.extensions import db
from webapp.keys import statuses
from webapp.keys.errors import KeyServiceError
from webapp.keys.inputs import require_provider
from webapp.keys.resolve import NoKeyAvailable, ResolvedKey, get_key_for
from webapp.providers.catalog import get_provider
from webapp.tokens.authn import TokenIdentity
from webapp.tokens.policy import RESOLVE_SCOPE

log = logging.getLogger(__name__)


class ResolveNeedsToken(KeyServiceError):
    code = "token_required"
    status = 403


class NoOwnKey(KeyServiceError):
    code = "no_own_key"
    status = 404


#: refusals of the caller (outcome "denied"), with the reason their audit rows give;
#: anything else that ends a call is a failure
DENIALS: dict[type[Exception], str] = {ResolveNeedsToken: "token_required", NoOwnKey: "global_key"}


@contextmanager
def audited_call(
    user: User, token: TokenIdentity | None, provider_id: str, *, info: RequestInfo | None
) -> Iterator[None]:
    """Leave a ``token.resolve`` row for a call that ends in an error, whatever the error
    (once a run of ten minutes for the same caller, provider and reason; logged every time).

    The block holds everything the call does, from reading the request body to
    ``resolve_key`` (which records the row of a call that succeeds), so that a
    bad body, an unknown provider or an unreadable key are on record too.
    """
    try:
        yield
    except Exception as exc:
        db.session.rollback()
        outcome, reason = _outcome_of(exc)
        caller = f"{user.id}:{token.id if token is not None else '-'}"
        audit = first_refusal("resolve", f"{caller}:{provider_id[:40]}:{outcome}:{reason}")
        try:
            _record(user, token, provider_id, info, outcome=outcome, audit=audit, reason=reason)
        except Exception as write_error:
            db.session.rollback()
            # The call's own error is the one to answer with; the type only, as in
            # record_failure: a driver's message can carry the statement's parameters.
            log.error("could not audit a key resolve: %s", type(write_error).__name__)
        raise


def _outcome_of(exc: Exception) -> tuple[str, str]:
    for kind, reason in DENIALS.items():
        if isinstance(exc, kind):
            return "denied", reason
    if isinstance(exc, NoKeyAvailable):
        return "failed", exc.reason
    if isinstance(exc, KeyDecryptionError):
        return "failed", "key_unreadable"
    if isinstance(exc, HTTPException):
        return "failed", CODES.get(exc.code or 500, "error")
    code = getattr(exc, "code", None)  # KeyServiceError, ApiError: a machine-readable code
    return "failed", code if isinstance(code, str) else "error"


def resolve_key(
    user: User, token: TokenIdentity | None, provider_id: str, *, info: RequestInfo | None
) -> ResolvedKey:
    """The plaintext ``get_key_for`` would use, for the owner's token; call it in
    ``audited_call``, which records the calls that fail."""
    provider = require_provider(provider_id)
    if token is None or RESOLVE_SCOPE not in token.scopes:
        raise ResolveNeedsToken(
            f"Keys can only be resolved with an access token that has the {RESOLVE_SCOPE} scope."
        )
    allow_global = current_app.config["TOKEN_RESOLVE_GLOBAL_KEYS"]
    if not allow_global and statuses.key_status(user, provider.id).source == "global":
        raise NoOwnKey(f"You have no usable {provider.name} key of your own to resolve.")
    resolved = get_key_for(user, provider.id)
    if resolved.source == "global" and not allow_global:  # changed since the check above
        raise NoOwnKey(f"You have no usable {provider.name} key of your own to resolve.")
    hint = mask_key(resolved.value, provider.key_prefix)
    _record(user, token, provider.id, info, outcome="ok", source=resolved.source, key_hint=hint)
    return resolved


def _record(
    user: User,
    token: TokenIdentity | None,
    provider_id: str,
    info: RequestInfo | None,
    *,
    outcome: str,
    audit: bool = True,
    **details: Any,
) -> None:
    if token is not None:
        details = {"token_id": token.id, "hint": token.hint, **details}
    provider: str | None = provider_id
    if get_provider(provider_id) is None:
        # Not a provider: the name came from the URL, so it goes in the details, cut short.
        provider, details = None, {**details, "requested": provider_id[:40]}
    if audit:
        record(
            "token.resolve",
            outcome=outcome,
            actor_id=user.id,
            provider=provider,
            info=info,
            details=details,
        )
        db.session.commit()
    log.info(
        "key resolve for user %s, %s: %s",
        user.id,
        provider,
        outcome,
        extra={"event": "token.resolve", "user_id": user.id, "provider": provider, **details},
    )
