"""``Authorization: Bearer khp_...`` on /api, and CSRF for everything else.

A bearer request is authenticated by its token alone: its cookies are never
read (the session it sees is empty and never saved), so there is no ambient
credential to forge and it needs no CSRF token. Every other request goes
through Flask-WTF's check exactly as before; ``WTF_CSRF_CHECK_DEFAULT`` is off
only so that this one hook decides which of the two a request is.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, Request, Response, current_app, g, make_response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from limits import parse_many

from webapp.audit.service import RequestInfo
from webapp.config import ConfigError
from webapp.counters import counted, counter_key, limits_on
from webapp.errors import error_response
from webapp.extensions import csrf, limiter
from webapp.ratelimit import AUDIT_EVERY, configured, refused, user_rate_key
from webapp.tokens import authn, policy, scopes
from webapp.web import request_info

log = logging.getLogger(__name__)

REALM = 'Bearer realm="keyhold"'
INVALID_TOKEN = "The access token is missing, malformed, unknown, expired or revoked."


#: issuing tokens (page and API together): minting is cheap to ask for and worth bounding
write_limit = limiter.shared_limit(
    configured("RATELIMIT_TOKEN_WRITE"),
    scope="token-write",
    key_func=user_rate_key,
    methods=["POST"],
)


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def bearer_token(req: Request) -> str | None:
    """The credential of an /api request that uses the Bearer scheme, else None."""
    if not is_api_path(req.path):
        return None
    scheme, _, credential = req.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip()


class DetachedSession(SecureCookieSession):
    """The session of a bearer request: starts empty, whatever cookie came with it."""


class TokenAwareSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if bearer_token(request) is not None:
            return DetachedSession()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if isinstance(session, DetachedSession):
            return  # sets no cookie: the caller never had a session
        super().save_session(app, session, response)


def current_token() -> authn.TokenIdentity | None:
    """The token this request was authenticated by, if any."""
    return g.get("access_token")


def init_app(app: Flask) -> None:
    problems = policy.check_config(app.config)
    if problems:
        raise ConfigError(" ".join(problems))
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.session_interface = TokenAwareSessionInterface()
    # First of all hooks: rate limits, the setup gate and views must see the
    # token's owner as current_user, and nothing may load a user from a cookie first.
    app.before_request_funcs.setdefault(None, []).insert(0, authenticate_request)


def _cookieless_api_call() -> bool:
    """An API call that carries no cookie at all: nothing a forged request could ride on, so
    it needs no CSRF token, and one that needs a signed-in user is answered 401, not 400."""
    config = current_app.config
    names = (config["SESSION_COOKIE_NAME"], config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    return request.path.startswith("/api/") and not any(n in request.cookies for n in names)


def authenticate_request() -> Response | None:
    credential = bearer_token(request)
    if credential is None:
        if current_app.config["WTF_CSRF_ENABLED"] and not _cookieless_api_call():
            csrf.protect(apply_exemptions=True)
        return None
    info = request_info()
    try:
        identity, owner = authn.authenticate(credential, info=info)
    except authn.TokenRefused as exc:
        return _failed(exc, info)
    g.access_token = identity
    g._login_user = owner  # Flask-Login's current_user, for this request only
    if not _hit("RATELIMIT_TOKEN", "token", str(identity.id)):
        return _too_many("RATELIMIT_TOKEN", "token", str(identity.id))
    if request.endpoint is None:
        return None  # no such route: the 404 or 405 follows
    needed = scopes.required_scope(request.endpoint)
    if needed == scopes.PUBLIC or needed in identity.scopes:
        return None
    authn.record_scope_denial(identity, needed, request.endpoint, info)
    if needed == scopes.SESSION_ONLY:
        return _refusal(403, "token_not_allowed", "This cannot be done with an access token.")
    return _refusal(
        403,
        "insufficient_scope",
        f"This token lacks the {needed} scope.",
        f'error="insufficient_scope", scope="{needed}"',
    )


def _failed(refusal: authn.TokenRefused, info: RequestInfo) -> Response:
    """Answer a refused token, counting it against the client address's failure budget.

    Only failures spend the budget, and only after the token was checked: a
    valid token is let through from an address where others keep failing (a
    shared NAT, CI runner or proxy). Guessing gains nothing from that, as the
    190 random bits of a token are out of reach at any rate. Past the budget a
    failure gets 429, a log line and, once in a while, one ``ratelimit.hit`` row,
    as any refusal by a rate limit: a flood of guesses cannot become a flood of
    writes.
    """
    address = info.ip or "unknown"
    if not _hit("RATELIMIT_TOKEN_FAILURES", "token-failure", address):
        return _too_many("RATELIMIT_TOKEN_FAILURES", "token-failure", address)
    authn.record_refusal(refusal, info)
    if refusal.status == 403:
        return _refusal(403, "ip_not_allowed", "This token may not be used from this address.")
    return _refusal(401, "invalid_token", INVALID_TOKEN, 'error="invalid_token"')


def _refusal(status: int, code: str, message: str, challenge: str = "") -> Response:
    response = make_response(error_response(status, code, message))
    if status == 401 or challenge:
        response.headers["WWW-Authenticate"] = f"{REALM}, {challenge}" if challenge else REALM
    return response


def _hit(setting: str, scope: str, ident: str) -> bool:
    """Count one request against the limit; False when it is over."""
    if not limits_on():
        return True
    key = counter_key(scope, ident)
    items = parse_many(current_app.config[setting])
    return counted(lambda counter: all([counter.hit(item, *key) for item in items]))


def _too_many(setting: str, scope: str, ident: str) -> Response:
    key = counter_key(scope, ident)
    items = parse_many(current_app.config[setting])
    windows = counted(lambda counter: [counter.get_window_stats(i, *key) for i in items])
    reset = time.time()
    for stats in windows:
        if stats.remaining <= 0:
            reset = max(reset, stats.reset_time)
    # Logged and audited as every other limit's refusals: a line each, a row a run.
    first = lambda: counted(lambda c: c.hit(AUDIT_EVERY, "ratelimit-audit", *key))  # noqa: E731
    # The token's owner, or nobody for a refused token: never whoever the cookies name.
    user_id = getattr(g.get("_login_user"), "id", None)
    refused(f"{scope}:{ident}", current_app.config[setting], scope, first, user_id=user_id)
    response = make_response(error_response(429))
    response.headers["Retry-After"] = str(max(1, math.ceil(reset - time.time())))
    return response
