"""The token endpoints of the JSON API: manage tokens (browser only), resolve keys (token only).

Managing tokens needs a signed-in browser session and its CSRF token: an
access token can never list, mint, rotate or revoke tokens (see scopes.py).
Resolving a key needs an access token with ``keys:resolve``: a browser never
receives a stored key's plaintext.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask_login import current_user, login_required

from webapp.api.body import fields, json_body, no_query_on_changes, only_query
from webapp.api.errors import ApiError
from webapp.api.errors import register as register_api_errors
from webapp.api.payloads import iso
from webapp.auth.models import User
from webapp.db_types import utcnow
from webapp.tokens import policy, resolve, service
from webapp.tokens.bearer import current_token, write_limit
from webapp.tokens.models import URL_ID, AccessToken
from webapp.web import password_recent, request_info

bp = Blueprint("tokens_api", __name__, url_prefix="/api")


@bp.before_request
def _no_query_on_changes() -> None:
    if request.endpoint != "tokens_api.resolve_key":  # checked in the view, to be audited
        no_query_on_changes()


register_api_errors(bp)


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def token_payload(row: AccessToken) -> dict[str, Any]:
    """What may be shown about a token. Never the token itself."""
    return {
        "id": row.id,
        "name": row.name,
        "hint": row.token_hint,
        "scopes": list(row.scopes),
        "state": row.state(utcnow()),
        "created_at": iso(row.created_at),
        "expires_at": iso(row.expires_at),
        "allowed_ips": list(row.allowed_ips),
        "last_used_at": iso(row.last_used_at),
        "last_used_ip": row.last_used_ip,
        "use_count": row.use_count,
        "revoked_at": iso(row.revoked_at),
        "grace_until": iso(row.grace_until),
        "replaced_by_id": row.replaced_by_id,
    }


def _fresh_session() -> None:
    """Only a session whose password was given lately (at sign-in, or at /auth/confirm)
    creates tokens: a stolen cookie alone must not turn into a credential of its own."""
    if not password_recent():
        raise ApiError(
            403,
            "password_confirmation_required",
            "Confirm your password at /auth/confirm first: it was not given lately in this "
            'session (or "Keep me signed in" restored it).',
        )


def _issued(issued: service.IssuedToken, status: int = 201, **extra: Any):
    return jsonify(token=issued.token, access_token=token_payload(issued.row), **extra), status


@bp.get("/tokens")
@login_required
def list_tokens():
    fields(json_body())
    return jsonify(tokens=[token_payload(t) for t in service.list_tokens(_user())])


def _requested_spec(data: dict) -> service.TokenSpec:
    """The new token a create call asks for, or TokenInputError naming the fields sent."""
    expiry: int | None = data.get(
        "expires_in_days", current_app.config["TOKEN_DEFAULT_EXPIRY_DAYS"]
    )
    if data.get("no_expiry"):
        if "expires_in_days" in data:
            raise service.TokenInputError(
                "Give either expires_in_days or no_expiry, not both.",
                {"no_expiry": "Leave out expires_in_days for a token that never expires."},
            )
        expiry = None
    try:
        return service.clean_spec(
            data["name"],
            data.get("scopes", list(policy.DEFAULT_SCOPES)),
            expiry,
            data.get("allowed_ips", []),
        )
    except service.TokenInputError as exc:
        if data.get("no_expiry") and "expires_in_days" in exc.fields:
            # Refused for the field the client sent, not for the one it left out.
            exc.fields["no_expiry"] = exc.fields.pop("expires_in_days")
        raise


@bp.post("/tokens")
@login_required
@write_limit
def create_token():
    _fresh_session()
    data = fields(
        json_body(),
        required={"name": str},
        optional={"scopes": list, "expires_in_days": int, "no_expiry": bool, "allowed_ips": list},
    )
    spec = _requested_spec(data)
    return _issued(service.create_token(_user(), spec, info=request_info()))


@bp.post(f"/tokens/{URL_ID}/rotate")
@login_required
@write_limit
def rotate_token(token_id: int):
    _fresh_session()
    data = fields(json_body(), optional={"grace_hours": int})
    grace, problem = policy.clean_grace(data.get("grace_hours"), current_app.config)
    if problem:
        raise service.TokenInputError("The token was not rotated.", {"grace_hours": problem})
    issued = service.rotate_token(_user(), token_id, grace_hours=grace, info=request_info())
    replaced = token_payload(service.get_token(_user(), token_id))
    return _issued(issued, replaced=replaced)


@bp.delete(f"/tokens/{URL_ID}")
@login_required
def revoke_token(token_id: int):
    fields(json_body())
    row = service.revoke_token(_user(), token_id, info=request_info())
    return jsonify(access_token=token_payload(row))


@bp.post("/keys/resolve/<provider>")
@login_required
def resolve_key(provider: str):
    user, token, info = _user(), current_token(), request_info()
    # The body is read inside too: a call refused for its body is on record as well.
    with resolve.audited_call(user, token, provider, info=info):
        only_query()
        fields(json_body())
        resolved = resolve.resolve_key(user, token, provider, info=info)
    return jsonify(
        provider=provider,
        source=resolved.source,
        api_key=resolved.value,
        config=dict(resolved.config),
    )
