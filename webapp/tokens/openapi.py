"""The token endpoints in the OpenAPI document, and bearer access on every endpoint that allows it.

``with_tokens`` is applied by ``webapp.api.openapi.document``. Which scope an
operation needs is read from scopes.ENDPOINT_SCOPES through the URL map, so
the document cannot drift from what the bearer check enforces.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import current_app

from webapp.api.openapi import (
    PROVIDER_PARAM,
    SESSION,
    SESSION_CSRF,
    _object,
    _timestamp,
    error,
    listing,
    ok,
    operation,
    ref,
)
from webapp.tokens import format as token_format
from webapp.tokens.models import ACTIVE, EXPIRED, REPLACED, REVOKED, ROTATING
from webapp.tokens.policy import MAX_ALLOWED_IPS, MAX_NAME_LENGTH, SCOPES
from webapp.tokens.scopes import PUBLIC, SESSION_ONLY, required_scope

BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A personal access token (`khp_...`) from `/tokens`. Each operation lists "
    "the scope it needs; with a token, cookies are ignored and no CSRF token is needed. A token "
    "sent to any `/api` endpoint is checked, even where no credential is needed: one that does "
    "not work is answered 401 `invalid_token` there too.",
}
TOKEN_ID = {
    "name": "token_id",
    "in": "path",
    "required": True,
    "description": "A token id from `GET /api/tokens`",
    "example": 1,
    "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647},
}
_TOKEN_STRING = {
    "type": "string",
    "pattern": rf"^{token_format.PREFIX}[0-9A-Za-z]{{{token_format.TOKEN_LENGTH - 4}}}$",
    "description": "The token. Shown this once: Keyhold keeps only its SHA-256",
}
_SCOPE = {"type": "string", "enum": list(SCOPES)}

SCHEMAS: dict[str, Any] = {
    "AccessToken": _object(
        {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "hint": {"type": "string", "description": "The token's first 8 characters"},
            "scopes": {"type": "array", "items": _SCOPE},
            "state": {"type": "string", "enum": [ACTIVE, ROTATING, REPLACED, EXPIRED, REVOKED]},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": _timestamp("null: never expires"),
            "allowed_ips": {"type": "array", "items": {"type": "string"}},
            "last_used_at": _timestamp("The last authenticated request"),
            "last_used_ip": {"type": ["string", "null"]},
            "use_count": {"type": "integer", "minimum": 0},
            "revoked_at": _timestamp("When it was revoked"),
            "grace_until": _timestamp("After a rotation: when this token stops working"),
            "replaced_by_id": {"type": ["integer", "null"]},
        },
        "A personal access token. It never holds the token itself.",
    ),
    "TokenRequest": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
            "scopes": {
                "type": "array",
                "items": _SCOPE,
                "minItems": 1,
                "default": ["keys:read"],
                "description": "`keys:resolve` lets the token read your keys in plaintext: "
                "choose it only for your own backend services",
            },
            "expires_in_days": {
                "type": "integer",
                "minimum": 1,
                "description": "Default 90; at most the server's maximum (365 by default)",
            },
            "no_expiry": {
                "type": "boolean",
                "description": "A token that never expires, where the admin allows it",
            },
            "allowed_ips": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": MAX_ALLOWED_IPS,
                "description": "IPv4/IPv6 addresses and CIDR ranges; empty: any address",
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    },
    "IssuedToken": _object({"token": _TOKEN_STRING, "access_token": ref("AccessToken")}),
    "RotatedToken": _object(
        {
            "token": _TOKEN_STRING,
            "access_token": ref("AccessToken"),
            "replaced": ref("AccessToken"),
        }
    ),
    "ResolvedKey": _object(
        {
            "provider": {"type": "string"},
            "source": {"type": "string", "enum": ["user", "global"]},
            "api_key": {"type": "string", "description": "The plaintext key"},
            "config": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "The key Keyhold would use for this provider, in plaintext.",
    ),
}

_ERRORS = (400, 401, 413, 415, 429, 503)
_CONFIRM = (
    "403 `password_confirmation_required` when the password was not given in this session "
    'within `PASSWORD_CONFIRM_WINDOW` (or "Keep me signed in" restored the session): confirm '
    "it at `/auth/confirm`."
)
PATHS: dict[str, Any] = {
    "/api/tokens": {
        "get": operation(
            "List access tokens",
            {"200": ok("Your tokens, newest first", listing("tokens", "AccessToken"))},
            errors=_ERRORS,
            security=SESSION,
            tag="tokens",
        ),
        "post": operation(
            "Create an access token",
            {"201": ok("The new token, shown this once", ref("IssuedToken"))},
            errors=(*_ERRORS, 403, 409, 422),
            security=SESSION_CSRF,
            body=ref("TokenRequest"),
            examples={"read_only": {"name": "nightly report", "scopes": ["keys:read"]}},
            description="A signed-in browser only: an access token cannot create tokens. "
            "409 `too_many_tokens` when you have as many working tokens as allowed. " + _CONFIRM,
            tag="tokens",
        ),
    },
    "/api/tokens/{token_id}/rotate": {
        "post": operation(
            "Rotate an access token",
            {"201": ok("The successor, shown this once, and the old token", ref("RotatedToken"))},
            errors=(*_ERRORS, 403, 404, 409, 422),
            security=SESSION_CSRF,
            parameters=[TOKEN_ID],
            body=_object(
                {
                    "grace_hours": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "How long the old token keeps working (default 24)",
                    }
                },
                optional=True,
            ),
            body_required=False,
            description="A new token with the same name, scopes, lifetime and allowed "
            "addresses. Only an active token can be rotated: 409 `token_inactive` for one "
            "that has expired, was revoked or was already rotated (`message` says which). "
            "The token it replaced, if still in its grace period, stops now. " + _CONFIRM,
            tag="tokens",
        )
    },
    "/api/tokens/{token_id}": {
        "delete": operation(
            "Revoke an access token",
            {"200": ok("The token, now revoked", _object({"access_token": ref("AccessToken")}))},
            errors=(*_ERRORS, 404),
            security=SESSION_CSRF,
            parameters=[TOKEN_ID],
            description="Immediate, also during a rotation's grace period. Revoking twice "
            "changes nothing.",
            tag="tokens",
        )
    },
    "/api/keys/resolve/{provider}": {
        "post": operation(
            "Resolve a key",
            {
                "200": ok(
                    "The key to use, in plaintext (`Cache-Control: no-store`)", ref("ResolvedKey")
                )
            },
            errors=(*_ERRORS, 403, 404),
            security=[{"bearer": ["keys:resolve"]}],
            parameters=[PROVIDER_PARAM],
            description="For your own backend services: returns the plaintext of your key for "
            "the provider. Only with an access token that has `keys:resolve` (a browser "
            "session gets 403 `token_required`); global keys only where the admin allows. "
            "Every key handed out is audited; a refusal repeated by the same caller is "
            "audited once every ten minutes and logged each time.",
            tag="tokens",
        )
    },
}


def _bearer_access(paths: dict[str, Any]) -> None:
    """Add what a token meets to every operation: the refusals, and the scope where one may.

    bearer.py checks every token sent to /api, whatever the operation needs, so
    each operation may answer a token 401 (it does not work) and 403 (not from
    this address, not the scope needed, or an operation closed to tokens); the
    operations a token may call also get ``{"bearer": [scope]}``.
    """
    for rule in current_app.url_map.iter_rules():
        if not (rule.rule == "/api" or rule.rule.startswith("/api/")):
            continue
        scope = required_scope(rule.endpoint)
        path = re.sub(r"<(?:[^<>]+:)?([^<>:]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = paths.get(path, {}).get(method.lower())
            if op is None:
                continue
            responses = {"401": error(401), "403": error(403), **op["responses"]}
            op["responses"] = dict(sorted(responses.items()))
            if scope in (PUBLIC, SESSION_ONLY):
                continue
            # A list of this operation's own: the document's parts share theirs (SESSION),
            # and appending to one would give every operation every other one's scope.
            security = [*op.get("security", SESSION)]
            if {"bearer": [scope]} not in security:
                security.append({"bearer": [scope]})
            op["security"] = security


def with_tokens(document: dict[str, Any]) -> dict[str, Any]:
    document["paths"].update(copy.deepcopy(PATHS))
    document["components"]["schemas"].update(copy.deepcopy(SCHEMAS))
    document["components"]["securitySchemes"]["bearer"] = BEARER_SCHEME
    document["tags"].append({"name": "tokens", "description": "Personal access tokens"})
    _bearer_access(document["paths"])
    return document
