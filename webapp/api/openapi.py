"""The OpenAPI 3.1 description of /api, as plain data served at ``GET /api/openapi.json``.

To describe a new endpoint, add its path item to ``PATHS`` (and any new
schema to ``SCHEMAS``) with the helpers below, e.g.::

    PATHS["/api/things"] = {
        "get": operation("List things", {"200": ok("The things", ref("Things"))},
                         errors=(400, 401, 429)),
    }

``tests/test_openapi.py`` fails while a route in ``app.url_map`` has no
entry here, and fuzzes every entry against the running app.
"""

from __future__ import annotations

import copy
from typing import Any

from webapp.providers.catalog import all_providers
from webapp.templating import STATUS_LABELS

JSON = "application/json"

ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, a body that is not an object, wrong field types, unknown fields, "
    "query parameters the endpoint does not take (code `invalid_query`; a call that changes "
    "something takes none), or a missing CSRF token (code `csrf_failed`)",
    401: "Not signed in, or the access token is missing, malformed, unknown, expired or revoked "
    "(code `invalid_token`; a token sent where none is needed is checked all the same)",
    403: "Signed in, but not allowed (or a wrong / spent setup token); with an access token: "
    "a scope it lacks (`insufficient_scope`), an address it does not allow (`ip_not_allowed`) "
    "or an action tokens may not take (`token_not_allowed`)",
    404: "Unknown provider, or no such key",
    413: "The body is larger than the server accepts (64 KiB by default)",
    409: "The request conflicts with the current state (a token that is expired, revoked or "
    "already rotated, or as many working tokens as allowed; for a key being saved, other "
    "requests that changed it at the same moment: `key_conflict`, nothing was saved)",
    415: "A body was sent that is not `application/json`",
    422: "The key failed the format check or the provider rejected it; `message` and `fields` "
    "say why, in the provider's words where there are any",
    429: "Too many requests; `Retry-After` says how many seconds to wait",
    500: "Something failed on the server; nothing internal is revealed",
    503: "Keyhold is not set up yet (code `setup_required`)",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def error(status: int) -> dict[str, Any]:
    response = ok(ERROR_DESCRIPTIONS[status], ref("Error"))
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds until the limit resets",
                "required": True,
                "schema": {"type": "string", "pattern": r"^\d+$"},
            }
        }
    return response


def operation(
    summary: str,
    responses: dict[str, Any],
    *,
    errors: tuple[int, ...],
    security: list[dict[str, list[str]]] | None = None,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
    examples: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    description: str | None = None,
    tag: str = "keys",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": summary.lower().replace(" ", "_").replace("'", ""),
        "tags": [tag],
        "responses": {**responses, **{str(s): error(s) for s in sorted(set(errors) | {500})}},
    }
    if description:
        op["description"] = description
    if security is not None:
        op["security"] = security
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        media: dict[str, Any] = {"schema": body}
        if examples:
            media["examples"] = {name: {"value": value} for name, value in examples.items()}
        op["requestBody"] = {"required": body_required, "content": {JSON: media}}
    return op


#: signed in (GET); signed in and sending the CSRF token (unsafe methods)
SESSION = [{"session": []}]
SESSION_CSRF = [{"session": [], "csrf": []}]
PUBLIC: list[dict[str, list[str]]] = []

#: request bodies that succeed (a key stored without asking the provider)
KEY_EXAMPLES = {
    "custom_gateway": {
        "provider": "custom",
        "api_key": "gw-example-0123456789abcdef",
        "base_url": "https://llm.example.com/v1",
        "validate": False,
    },
    "openai_unchecked": {
        "provider": "openai",
        "api_key": "sk-proj-" + "A1b2C3d4" * 6,
        "validate": False,
    },
}

PROVIDER_PARAM = {
    "name": "provider",
    "in": "path",
    "example": "custom",
    "required": True,
    "description": "A provider id from `GET /api/providers`",
    "schema": {"type": "string", "enum": [p.id for p in all_providers()]},
}


def listing(name: str, item: str) -> dict[str, Any]:
    """An object with one array of ``item`` under ``name``."""
    return _object({name: {"type": "array", "items": ref(item)}})


def _timestamp(description: str) -> dict[str, Any]:
    return {"type": ["string", "null"], "format": "date-time", "description": description}


_STORED_KEY = {
    "provider": {"type": "string"},
    "has_key": {"type": "boolean"},
    "masked_key": {
        "type": ["string", "null"],
        "description": "The key's public prefix and last characters, e.g. `sk-proj-…a1B2`",
    },
    "status": {"type": "string", "enum": list(STATUS_LABELS)},
    "is_valid": {"type": ["boolean", "null"], "description": "null: not known"},
    "last_validated": _timestamp("When the provider was last asked (UTC)"),
    "last_error": {"type": ["string", "null"]},
    "models": {"type": "array", "items": {"type": "string"}},
    "updated_at": _timestamp("When the key was last stored (UTC)"),
    "http_status": {
        "type": ["integer", "null"],
        "description": "The HTTP status of the provider's answer to the last check; "
        "null: never checked, or no answer (see `status`)",
    },
    "elapsed_ms": {
        "type": ["integer", "null"],
        "minimum": 0,
        "description": "How long the last check took, in milliseconds; null: never checked",
    },
    "quota_checked": {
        "type": ["boolean", "null"],
        "description": "Whether the last check could see the key's credit; null: never checked",
    },
    "facts": {"$ref": "#/components/schemas/CheckFacts"},
}


def _word(description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": "^[A-Za-z_]{1,24}$", "description": description}


_CHECK_FACTS = {
    "limit": nullable({"type": "number", "description": "OpenRouter: credit limit in USD"}),
    "limit_remaining": nullable(
        {"type": "number", "description": "OpenRouter: credit left under the limit, in USD"}
    ),
    "limit_reset": nullable(_word("OpenRouter: when the limit resets, e.g. `monthly`")),
    "usage": {"type": "number", "description": "OpenRouter: credit used, in USD"},
    "usage_monthly": {"type": "number", "description": "OpenRouter: credit used this month"},
    "is_free_tier": {"type": "boolean", "description": "OpenRouter: a free-tier account"},
    "is_available": {"type": "boolean", "description": "DeepSeek: the balance can pay"},
    "balances": {
        "type": "array",
        "description": "DeepSeek: the account's balances",
        "items": {
            "type": "object",
            "properties": {
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                **{
                    name: {"type": "string", "pattern": r"^-?[0-9]{1,15}(\.[0-9]{1,10})?$"}
                    for name in ("total_balance", "granted_balance", "topped_up_balance")
                },
            },
            "required": ["currency"],
            "additionalProperties": False,
        },
    },
    "api_key_blocked": {"type": "boolean", "description": "xAI: the key is blocked"},
    "api_key_disabled": {"type": "boolean", "description": "xAI: the key is disabled"},
    "team_blocked": {"type": "boolean", "description": "xAI: the key's team is blocked"},
    "role": _word("Hugging Face: the token's role (`read`, `write`, `fineGrained`)"),
    "retry_after": {
        "type": "integer",
        "minimum": 0,
        "description": "Seconds the provider asked to wait after throttling the check",
    },
}


def _object(
    properties: dict[str, Any], description: str = "", *, optional: bool = False
) -> dict[str, Any]:
    """A closed object; every property is required unless ``optional``."""
    schema = {
        "type": "object",
        "properties": properties,
        "required": [] if optional else list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": {
                "type": "object",
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Machine-readable, e.g. `key_rejected`",
                    },
                    "message": {"type": "string", "description": "Fit to show a person"},
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "Per-field reasons, when fields were at fault",
                    },
                },
                "required": ["code", "message"],
                "additionalProperties": False,
            }
        }
    ),
    "CheckFacts": _object(
        _CHECK_FACTS,
        "What the last check learnt beyond its verdict, where the provider says it; only "
        "numbers, flags and short words, never anything that could carry the key.",
        optional=True,
    ),
    "KeyStatus": _object(
        {
            **_STORED_KEY,
            "source": {
                "type": "string",
                "enum": ["user", "global", "none"],
                "description": "Which key `get_key_for` would use now",
            },
            "expires_at": _timestamp("The expiry date the user set as a reminder, if any"),
            "expiring_soon": {
                "type": "boolean",
                "description": "expires_at is within 7 days (or past)",
            },
        },
        "A user's key for one provider. It never holds the key itself.",
    ),
    "GlobalKeyStatus": _object(
        {
            **_STORED_KEY,
            "fallback_enabled": {
                "type": "boolean",
                "description": "Whether users without a usable key of their own may use it",
            },
        },
        "A server-wide key for one provider. It never holds the key itself.",
    ),
    "ProviderField": _object(
        {
            "name": {"type": "string"},
            "label": {"type": "string"},
            "help": {"type": "string"},
            "kind": {"type": "string", "enum": ["text", "url"]},
            "required": {"type": "boolean"},
            "default": {"type": ["string", "null"]},
        }
    ),
    "Provider": _object(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "key_format": {"type": "string", "description": "What the key looks like"},
            "docs_url": {"type": "string", "format": "uri"},
            "fields": {
                "type": "array",
                "items": ref("ProviderField"),
                "description": "Settings to send next to the key",
            },
        }
    ),
    "KeySubmission": {
        "type": "object",
        "properties": {
            "provider": PROVIDER_PARAM["schema"],
            "api_key": {"type": "string", "description": "The key; never sent back"},
            "validate": {
                "type": "boolean",
                "default": True,
                "description": "Ask the provider before storing; a key it rejects is not stored",
            },
            **{
                spec.name: {"type": "string", "description": f"{p.name}: {spec.help}"}
                for p in all_providers()
                for spec in p.extra_fields
            },
        },
        "required": ["provider", "api_key"],
        "additionalProperties": False,
        "description": "Provider-specific fields apply only to their provider (422 otherwise).",
    },
}
_EXPIRES_AT = {
    "type": ["string", "null"],
    "description": "An expiry reminder: a date (`2027-01-31`) from today to ten years ahead, "
    "or null for none; 422 otherwise",
    "examples": ["2027-01-31"],
}
SCHEMAS["UserKeySubmission"] = {
    **SCHEMAS["KeySubmission"],
    "properties": {**SCHEMAS["KeySubmission"]["properties"], "expires_at": _EXPIRES_AT},
    "description": SCHEMAS["KeySubmission"]["description"]
    + " A replaced key's expiry reminder is replaced too (none unless `expires_at` is given).",
}

DEEP = "Also make one tiny paid request where the model listing cannot show credit"
_KEYS_ERRORS = (400, 401, 413, 415, 429, 503)

PATHS: dict[str, Any] = {
    "/api/csrf-token": {
        "get": operation(
            "Get a CSRF token",
            {
                "200": ok(
                    "Send it as `X-CSRFToken` on unsafe requests",
                    _object({"csrf_token": {"type": "string"}}),
                )
            },
            errors=(400, 413, 415, 429),
            security=PUBLIC,
            tag="session",
        )
    },
    "/api/openapi.json": {
        "get": operation(
            "Get this document",
            {"200": ok("The OpenAPI document", {"type": "object"})},
            errors=(400, 413, 415, 429),
            security=PUBLIC,
            tag="session",
        )
    },
    "/api/providers": {
        "get": operation(
            "List providers",
            {
                "200": ok(
                    "The supported providers",
                    listing("providers", "Provider"),
                )
            },
            errors=_KEYS_ERRORS,
        )
    },
    "/api/api-keys/set": {
        "post": operation(
            "Set a key",
            {
                "201": ok("Stored (there was none)", ref("KeyStatus")),
                "200": ok("Replaced the stored key", ref("KeyStatus")),
            },
            errors=(*_KEYS_ERRORS, 404, 409, 422),
            security=SESSION_CSRF,
            body=ref("UserKeySubmission"),
            examples=KEY_EXAMPLES,
            description="Checks the key's format, then (unless `validate` is false) asks the "
            "provider. A key the provider rejects is not stored: 422 `key_rejected`. When the "
            "provider cannot be reached the key is stored with status `network_error` or "
            "`provider_error`.",
        )
    },
    "/api/api-keys/validate/{provider}": {
        "post": operation(
            "Validate a stored key",
            {"200": ok("The key's status after the check", ref("KeyStatus"))},
            errors=(*_KEYS_ERRORS, 404),
            security=SESSION_CSRF,
            parameters=[PROVIDER_PARAM],
            body=_object({"deep": {"type": "boolean", "description": DEEP}}, optional=True),
            body_required=False,
        )
    },
    "/api/api-keys/status": {
        "get": operation(
            "Get the status of every provider",
            {
                "200": ok(
                    "One entry per supported provider",
                    listing("providers", "KeyStatus"),
                )
            },
            errors=_KEYS_ERRORS,
            security=SESSION,
        )
    },
    "/api/api-keys/expiry/{provider}": {
        "post": operation(
            "Set a key's expiry reminder",
            {"200": ok("The key's status with its new reminder", ref("KeyStatus"))},
            errors=(*_KEYS_ERRORS, 404, 422),
            security=SESSION_CSRF,
            parameters=[PROVIDER_PARAM],
            body=_object({"expires_at": _EXPIRES_AT}),
            examples={"set": {"expires_at": "2030-01-31"}, "clear": {"expires_at": None}},
            description="Keyhold cannot know when a provider will expire a key: this is the "
            "date you expect. Status objects flag `expiring_soon` from 7 days before. 404 when "
            "you have no key for the provider.",
        )
    },
    "/api/api-keys/expiring": {
        "get": operation(
            "List keys expiring soon",
            {
                "200": ok(
                    "Your keys whose reminder is within `days` (or past), soonest first",
                    _object(
                        {
                            "days": {"type": "integer"},
                            "providers": {"type": "array", "items": ref("KeyStatus")},
                        }
                    ),
                )
            },
            errors=_KEYS_ERRORS,
            security=SESSION,
            parameters=[
                {
                    "name": "days",
                    "in": "query",
                    "required": False,
                    "description": "How far ahead to look (default 7)",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 3650},
                }
            ],
        )
    },
    "/api/api-keys/{provider}": {
        "delete": operation(
            "Delete a key",
            {"200": ok("The provider's status without the key", ref("KeyStatus"))},
            errors=(*_KEYS_ERRORS, 404),
            security=SESSION_CSRF,
            parameters=[PROVIDER_PARAM],
        )
    },
    "/api/api-keys/": {
        "delete": operation(
            "Delete all keys",
            {
                "200": ok(
                    "How many keys were deleted",
                    _object({"deleted": {"type": "integer", "minimum": 0}}),
                )
            },
            errors=_KEYS_ERRORS,
            security=SESSION_CSRF,
            description="Also served as `/api/api-keys`, without the slash. Takes no query "
            "and no fields. A path with a doubled slash (`/api/api-keys//`, or a provider id "
            "of an encoded `/`) is a 404, never this call.",
        )
    },
    "/api/api-keys/set-initial": {
        "post": operation(
            "Set a global key",
            {
                "201": ok("Stored (there was none)", ref("GlobalKeyStatus")),
                "200": ok("Replaced the global key", ref("GlobalKeyStatus")),
            },
            errors=(400, 401, 403, 404, 413, 415, 422, 429),
            security=[{"setupToken": []}, {"session": [], "csrf": []}],
            body=ref("KeySubmission"),
            examples=KEY_EXAMPLES,
            description="Allowed with the setup token (`X-Setup-Token`) while setup is not "
            "finished, or for a signed-in admin (with the CSRF token). The token is checked "
            "before the body is read.",
            tag="setup",
        )
    },
    "/api/api-keys/status-initial": {
        "get": operation(
            "Get the setup state",
            {
                "200": ok(
                    "Whether setup is finished; the global keys too for the setup token's "
                    "holder or an admin",
                    {
                        "type": "object",
                        "properties": {
                            "setup_complete": {"type": "boolean"},
                            "providers": {"type": "array", "items": ref("GlobalKeyStatus")},
                        },
                        "required": ["setup_complete"],
                        "additionalProperties": False,
                    },
                )
            },
            errors=(400, 403, 413, 415, 429),
            security=[{}, {"setupToken": []}, {"session": []}],
            tag="setup",
        )
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Keyhold API",
        "version": "1",
        "description": "Store, check and remove your LLM provider API keys. Keys are write-only: "
        "no response contains one, except `POST /api/keys/resolve/{provider}`, which hands "
        "a key to an access token with the `keys:resolve` scope (every key handed out audited). "
        'Errors are `{"error": {"code", "message", '
        '"fields"}}`. A method a path does not offer gets 405 with `Allow`.',
    },
    "servers": [{"url": "/"}],
    "security": SESSION,
    "tags": [
        {"name": "keys", "description": "Your own keys"},
        {"name": "setup", "description": "First start and global keys"},
        {"name": "session", "description": "Helpers for the frontend"},
    ],
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            "setupToken": {"type": "apiKey", "in": "header", "name": "X-Setup-Token"},
        },
        "schemas": SCHEMAS,
    },
}


def document() -> dict[str, Any]:
    """The whole document (a copy: callers may not change the module's data)."""
    # They build on the helpers above.
    from webapp.audit.openapi import with_audit
    from webapp.tokens.openapi import with_tokens

    return with_tokens(with_audit(copy.deepcopy({**_DOCUMENT, "paths": PATHS})))
