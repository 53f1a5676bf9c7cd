"""Small helpers shared by the HTML views and the JSON API."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import current_app, g, make_response, render_template, request, session
from flask_login import current_user, login_fresh, login_user
from flask_login.utils import decode_cookie

from webapp.audit.service import RequestInfo
from webapp.auth.models import User
from webapp.auth.services import open_session
from webapp.ratelimit import client_ip

F = TypeVar("F", bound=Callable[..., Any])


def request_info() -> RequestInfo:
    token = g.get("access_token")  # set by tokens.bearer for a request made with a token
    return RequestInfo(
        ip=client_ip(),
        user_agent=request.headers.get("User-Agent", "")[:200],
        token_id=token.id if token is not None else None,
        token_hint=token.hint if token is not None else None,
    )


#: What a browser is told when its sign-in lost a race with a change to the account.
SIGN_IN_AGAIN = "Your account changed while you were being signed in. Please sign in again."


def sign_in(user: User, *, remember: bool = False) -> bool:
    """Sign ``user`` in on this browser, in a fresh session of its own; False, and signed
    out, when the account was deleted or its password changed since this request checked
    it (``open_session``)."""
    session.clear()  # a fresh session at login: no fixation
    if not open_session(user, info=request_info()):
        return False
    login_user(user, remember=remember)
    password_given()
    if not remember and _remember_cookie() is not None:
        # An earlier user's (or an earlier session's) "Keep me signed in" ends here: left in
        # place it would outlive this session and, on a shared browser, name someone else.
        session["_remember"] = "clear"
    return True


def password_given() -> None:
    """Note that the password was just given on this browser (signing in, or confirming)."""
    session["password_at"] = int(time.time())


def password_recent() -> bool:
    """Whether this browser gave the password within PASSWORD_CONFIRM_WINDOW, in this very
    session: one "Keep me signed in" brought back (not fresh) never has. What a stolen cookie
    must not do alone (creating access tokens) asks for the password again otherwise."""
    given = session.get("password_at")
    if not login_fresh() or not isinstance(given, int):
        return False
    return 0 <= time.time() - given <= current_app.config["PASSWORD_CONFIRM_WINDOW"]


def _remember_cookie() -> str | None:
    return request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))


def remembered() -> bool:
    """Whether this browser was kept signed in ("Keep me signed in"): its remember-me cookie
    names the signed-in user's current session, not a stale one left by someone else."""
    cookie = _remember_cookie()
    if cookie is None or not current_user.is_authenticated:
        return False
    return decode_cookie(cookie) == current_user.get_id()


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default``."""
    if not target or "\\" in target or any(ord(ch) < 0x20 for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def no_store(view: F) -> F:
    """Keep key pages out of every cache, including the browser's back button."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        response = make_response(view(*args, **kwargs))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    return wrapper  # type: ignore[return-value]


def form_status(form: Any) -> int:
    """400 for a submitted form with errors, so clients and tests see the refusal."""
    if request.method == "POST" and (form.form_errors or any(f.errors for f in form)):
        return 400
    return 200


def confirm_delete(template: str, form: Any, refused: Exception | None, *, shown: Any, **context):
    """The page asking to confirm a key's deletion, naming in its form the key it shows
    (``shown``, a KeyStatus). After a refusal (the key was replaced since the page was
    shown), the same page for the key stored now, saying why: a 409."""
    form.shown.data = shown.fingerprint
    page = render_template(template, form=form, refused=refused, **context)
    return (page, 409) if refused is not None else page
