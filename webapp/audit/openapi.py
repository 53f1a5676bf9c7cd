"""``GET /api/audit`` in the OpenAPI document (merged by ``webapp.api.openapi.document``)."""

from __future__ import annotations

import copy
from typing import Any

from webapp.api.openapi import SESSION, _object, ok, operation, ref
from webapp.audit.actions import ACTIONS, FAMILIES
from webapp.audit.history import DEFAULT_LIMIT, MAX_LIMIT
from webapp.providers.catalog import all_providers


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


SCHEMAS: dict[str, Any] = {
    "AuditEvent": _object(
        {
            "id": {"type": "integer", "description": "Also the `before` of an older page"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "action": {"type": "string", "enum": list(ACTIONS)},
            "label": {"type": "string", "description": "The action in words"},
            "outcome": {"type": "string", "enum": ["ok", "denied", "failed"]},
            "provider": {"type": ["string", "null"]},
            "actor_user_id": {"type": ["integer", "null"], "description": "Who did it"},
            "subject_user_id": {"type": ["integer", "null"], "description": "Whose account"},
            "ip": {"type": ["string", "null"]},
            "user_agent": {"type": ["string", "null"]},
            "details": {
                "type": "object",
                "description": "Small facts: a key's masked hint and fingerprint, a check's "
                "result, a reason. Never a key",
            },
        },
        "One entry of the audit trail.",
    ),
}

PATHS: dict[str, Any] = {
    "/api/audit": {
        "get": operation(
            "List audit events",
            {
                "200": ok(
                    "Events, newest first",
                    _object(
                        {
                            "events": {"type": "array", "items": ref("AuditEvent")},
                            "next_before": {
                                "type": ["integer", "null"],
                                "description": "Pass as `before` for the next (older) page; "
                                "null on the last page",
                            },
                        }
                    ),
                )
            },
            errors=(400, 401, 403, 404, 413, 415, 429, 503),
            security=SESSION,
            parameters=[
                _query(
                    "provider",
                    "Only this provider's events",
                    {"type": "string", "enum": [p.id for p in all_providers()]},
                ),
                _query(
                    "action",
                    "One action (`key.set`) or a family (`key`)",
                    {"type": "string", "enum": sorted({*ACTIONS, *FAMILIES})},
                ),
                _query(
                    "before",
                    "An event id (older events only) or an ISO 8601 time with zone",
                    {"type": "string"},
                ),
                _query(
                    "limit",
                    f"Events per page (default {DEFAULT_LIMIT})",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                ),
                _query(
                    "user",
                    "Admins in a browser only: a user id or email, or `*` for everyone "
                    "(403 otherwise, 404 for an unknown email)",
                    {"type": "string"},
                ),
            ],
            description="Your own events: what was done with your account and keys. With an "
            "access token this needs `audit:read`.",
            tag="audit",
        )
    }
}


def with_audit(document: dict[str, Any]) -> dict[str, Any]:
    document["paths"].update(copy.deepcopy(PATHS))
    document["components"]["schemas"].update(copy.deepcopy(SCHEMAS))
    document["tags"].append({"name": "audit", "description": "The audit trail"})
    return document
