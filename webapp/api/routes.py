"""The JSON API under /api: the same service calls as the pages, answered in JSON.

Authenticated by the session cookie; unsafe methods need the CSRF token in an
``X-CSRFToken`` header (``GET /api/csrf-token``). ``set-initial`` may instead
be authorised by the setup token in ``X-Setup-Token``: that header is not an
ambient credential a browser would attach by itself, so it needs no CSRF
token. The document at ``/api/openapi.json`` describes every route here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from werkzeug.routing import BaseConverter

from webapp.admin.access import require_admin
from webapp.api import errors, openapi, payloads
from webapp.api.body import NULLABLE_STR, fields, json_body, no_query_on_changes, only_query
from webapp.api.errors import ApiError
from webapp.auth.models import User
from webapp.db_types import whole_number
from webapp.extensions import csrf
from webapp.keys import expiry, global_keys, service, statuses
from webapp.keys.errors import InvalidKeyInput
from webapp.keys.inputs import require_provider
from webapp.keys.limits import global_key_writes, key_writes
from webapp.providers.catalog import Provider, all_providers
from webapp.setup import service as setup
from webapp.setup.limits import SETUP_TOKEN_HEADER, token_guesses
from webapp.validation import service as validation
from webapp.validation.limits import key_checks
from webapp.web import request_info

bp = Blueprint("api", __name__, url_prefix="/api")
bp.before_request(no_query_on_changes)
errors.register(bp)

#: the fixed paths beside ``/api/api-keys/<provider>``: no provider can be named like them
FIXED_KEY_PATHS = ("set", "set-initial", "status", "status-initial", "expiring")


class ProviderSegment(BaseConverter):
    """A provider id in a path, never one of FIXED_KEY_PATHS: ``DELETE /api/api-keys/status``
    is a method that path does not offer (405 with ``Allow``), not a provider named
    "status"."""

    regex = "(?!(?:" + "|".join(re.escape(name) for name in FIXED_KEY_PATHS) + ")$)[^/]+"


bp.record_once(lambda state: state.app.url_map.converters.setdefault("provider", ProviderSegment))

#: every provider-specific field any provider takes (each is a string)
EXTRA_FIELDS = {spec.name: str for p in all_providers() for spec in p.extra_fields}


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _key_submission(
    reminder: bool = False,
) -> tuple[Provider, str, dict[str, str], bool, datetime | None]:
    """The provider, the key, that provider's own fields, whether to validate first,
    and (with ``reminder``: a user's key) the expiry reminder."""
    optional: dict[str, Any] = {"validate": bool, **EXTRA_FIELDS}
    if reminder:
        optional["expires_at"] = NULLABLE_STR
    data = fields(json_body(), required={"provider": str, "api_key": str}, optional=optional)
    provider = require_provider(data["provider"])
    own = {spec.name for spec in provider.extra_fields}
    foreign = {
        n: f"{provider.name} takes no {n}." for n in EXTRA_FIELDS if n in data and n not in own
    }
    if foreign:
        raise InvalidKeyInput("The key was not saved: please correct the marked fields.", foreign)
    extra = {name: data[name] for name in own if name in data}
    expires_at = expiry.parse_expiry(data.get("expires_at"))
    return provider, data["api_key"], extra, data.get("validate", True), expires_at


@bp.get("/csrf-token")
def csrf_token():
    fields(json_body())
    return jsonify(csrf_token=generate_csrf())


@bp.get("/openapi.json")
def openapi_document():
    fields(json_body())
    return jsonify(openapi.document())


@bp.get("/providers")
@login_required
def providers():
    fields(json_body())
    return jsonify(providers=[payloads.provider(p) for p in all_providers()])


@bp.post("/api-keys/set")
@login_required
@key_writes
def set_key():
    provider, api_key, extra, validate, expires_at = _key_submission(reminder=True)
    _, created = service.save_key(
        _user(),
        provider.id,
        api_key,
        extra,
        info=request_info(),
        validate=validate,
        expires_at=expires_at,
    )
    status = statuses.key_status(_user(), provider.id)
    return jsonify(payloads.key_status(status)), 201 if created else 200


@bp.post("/api-keys/validate/<provider>")
@login_required
@key_checks
def validate_key(provider: str):
    deep = fields(json_body(), optional={"deep": bool}).get("deep", False)
    validation.validate_key(_user(), provider, deep=deep, info=request_info())
    return jsonify(payloads.key_status(statuses.key_status(_user(), provider)))


@bp.get("/api-keys/status")
@login_required
def status():
    fields(json_body())
    found = statuses.list_status(_user())
    return jsonify(providers=[payloads.key_status(s) for s in found])


@bp.post("/api-keys/expiry/<provider>")
@login_required
@key_writes
def set_expiry(provider: str):
    data = fields(json_body(), required={"expires_at": NULLABLE_STR})
    require_provider(provider)
    when = expiry.parse_expiry(data["expires_at"])
    expiry.set_expiry(_user(), provider, when, info=request_info())
    return jsonify(payloads.key_status(statuses.key_status(_user(), provider)))


@bp.get("/api-keys/expiring")
@login_required
def expiring():
    fields(json_body())
    days = _days_param()
    found = expiry.expiring(_user(), days)
    return jsonify(days=days, providers=[payloads.key_status(s) for s in found])


def _days_param() -> int:
    only_query(("days",))
    days = whole_number(request.args.get("days", str(expiry.WARNING.days)))
    if days is None or days > expiry.MAX_DAYS:
        problems = {"days": f"A whole number of days from 0 to {expiry.MAX_DAYS}."}
        raise ApiError(400, "invalid_query", "The query has errors.", problems)
    return days


@bp.delete("/api-keys/<provider:provider>")
@login_required
def delete_key(provider: str):
    fields(json_body())
    service.delete_key(_user(), provider, info=request_info())
    return jsonify(payloads.key_status(statuses.key_status(_user(), provider)))


# With the slash and without (a script's spelling gets the JSON answer, not a redirect), and
# nothing else: not strict_slashes=False, which also took "/api-keys//", the path of a delete
# of one key whose provider id came out empty or as an encoded "/".
@bp.delete("/api-keys")
@bp.delete("/api-keys/")
@login_required
def clear_keys():
    fields(json_body())
    return jsonify(deleted=service.clear_keys(_user(), info=request_info()))


def _no_setup_token() -> bool:
    """Only a request that presents a setup token is a guess at one; an admin's is not."""
    return SETUP_TOKEN_HEADER not in request.headers


def _global_key_actor() -> User | None:
    """Who may set a global key: the setup token's holder (None) or a signed-in admin."""
    token = request.headers.get(SETUP_TOKEN_HEADER)
    if token is not None:
        setup.check_token(token, info=request_info())
        return None
    if not current_user.is_authenticated:  # no session at all: 401, as everywhere else
        abort(401)
    csrf.protect()  # from here on the session cookie is the credential
    require_admin(current_user, "api.set_initial", info=request_info())
    return _user()


@bp.post("/api-keys/set-initial")
@csrf.exempt
@token_guesses(exempt_when=_no_setup_token)
@global_key_writes
def set_initial():
    actor = _global_key_actor()  # before reading the body: strangers learn nothing from it
    provider, api_key, extra, validate, _ = _key_submission()
    _, created = global_keys.save_global_key(
        provider.id, api_key, extra, actor=actor, info=request_info(), validate=validate
    )
    status = global_keys.global_status(provider.id)
    return jsonify(payloads.global_key_status(status)), 201 if created else 200


def _may_see_global_keys() -> bool:
    token = request.headers.get(SETUP_TOKEN_HEADER)
    if token is not None:
        setup.check_token(token, info=request_info())
        return True
    return bool(current_user.is_authenticated and current_user.is_admin)


@bp.get("/api-keys/status-initial")
@token_guesses(exempt_when=_no_setup_token)
def status_initial():
    fields(json_body())
    body: dict[str, Any] = {"setup_complete": setup.setup_finished()}
    if _may_see_global_keys():
        body["providers"] = [
            payloads.global_key_status(g) for g in global_keys.list_global_status()
        ]
    return jsonify(body)
