"""Which scope each /api endpoint needs from a bearer token.

Every endpoint under /api must be listed: an endpoint missing here is closed
to tokens (deny by default) and ``tests/test_tokens_scopes.py`` fails until
it is given a rule. Token management, admin and setup actions are
``SESSION_ONLY``: a token can never mint tokens or act as an admin, even
when its owner is one.
"""

from __future__ import annotations

PUBLIC = "public"  # no credential needed; a token sent anyway must still be valid
SESSION_ONLY = "session-only"  # a signed-in browser only, never a token

ENDPOINT_SCOPES: dict[str, str] = {
    "api.openapi_document": PUBLIC,
    "api.csrf_token": SESSION_ONLY,
    "api.providers": "keys:read",
    "api.status": "keys:read",
    "api.expiring": "keys:read",
    "api.set_expiry": "keys:write",
    "api.set_key": "keys:write",
    "api.delete_key": "keys:write",
    "api.clear_keys": "keys:write",
    "api.validate_key": "keys:validate",
    "api.set_initial": SESSION_ONLY,
    "api.status_initial": SESSION_ONLY,
    "tokens_api.list_tokens": SESSION_ONLY,
    "tokens_api.create_token": SESSION_ONLY,
    "tokens_api.rotate_token": SESSION_ONLY,
    "tokens_api.revoke_token": SESSION_ONLY,
    "tokens_api.resolve_key": "keys:resolve",
    "audit_api.list_events": "audit:read",
}


def required_scope(endpoint: str) -> str:
    return ENDPOINT_SCOPES.get(endpoint, SESSION_ONLY)
