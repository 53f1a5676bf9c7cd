"""``keys:resolve``: a user's own backend services fetch the key the app would use.

This is the one place a stored key's plaintext leaves Keyhold after it was
saved, so it is narrow: only for a request authenticated by an access token
that carries the scope (never for a browser session), only the owner's own
key unless the admin allows handing out global keys too, and every call,
answered or refused, leaves an audit row.
"""

from __future__ import annotations

import logging

from flask import current_app

from webapp.audit.service import RequestInfo, record
from webapp.auth.models import User
from webapp.crypto import mask_key
from webapp.extensions import db
from webapp.keys import service as keys
from webapp.tokens.authn import TokenIdentity
from webapp.tokens.policy import RESOLVE_SCOPE

log = logging.getLogger(__name__)


class ResolveNeedsToken(keys.KeyServiceError):
    code = "token_required"
    status = 403


class NoOwnKey(keys.KeyServiceError):
    code = "no_own_key"
    status = 404


def resolve_key(
    user: User, token: TokenIdentity | None, provider_id: str, *, info: RequestInfo | None
) -> keys.ResolvedKey:
    """The plaintext ``get_key_for`` would use, for the owner's token; audited either way."""
    provider = keys.require_provider(provider_id)
    if token is None or RESOLVE_SCOPE not in token.scopes:
        _record(user, token, provider.id, info, outcome="denied", reason="token_required")
        raise ResolveNeedsToken(
            f"Keys can only be resolved with an access token that has the {RESOLVE_SCOPE} scope."
        )
    allow_global = current_app.config["TOKEN_RESOLVE_GLOBAL_KEYS"]
    if not allow_global and keys.key_status(user, provider.id).source == "global":
        _record(user, token, provider.id, info, outcome="denied", reason="global_key")
        raise NoOwnKey(f"You have no usable {provider.name} key of your own to resolve.")
    try:
        resolved = keys.get_key_for(user, provider.id)
    except keys.NoKeyAvailable as exc:
        _record(user, token, provider.id, info, outcome="failed", reason=exc.reason)
        raise
    if resolved.source == "global" and not allow_global:  # changed since the check above
        _record(user, token, provider.id, info, outcome="denied", reason="global_key")
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
    **details: str,
) -> None:
    if token is not None:
        details = {"token_id": token.id, "hint": token.hint, **details}  # type: ignore[dict-item]
    record(
        "token.resolve",
        outcome=outcome,
        actor_id=user.id,
        provider=provider_id,
        info=info,
        details=details,
    )
    db.session.commit()
    log.info(
        "key resolve for user %s, %s: %s",
        user.id,
        provider_id,
        outcome,
        extra={"event": "token.resolve", "user_id": user.id, "provider": provider_id, **details},
    )
