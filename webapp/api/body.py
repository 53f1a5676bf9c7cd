"""Reading JSON request bodies: one set of rules for every endpoint under /api.

A body is optional where an endpoint takes no fields; when one is sent it
must be a JSON object (``Content-Type: application/json``) of at most
MAX_CONTENT_LENGTH bytes, and every string in it must be text a database
can hold (no NUL, no lone surrogates). Each endpoint then names the fields
it accepts with their types; anything else is refused, so a misspelt field
is an error instead of being ignored. A request that changes something
follows the same rule for its query string (it takes none), so that
``DELETE /api/api-keys/?provider=groq`` cannot quietly delete every key; reads
that take parameters refuse the ones they do not take, and the others leave a
cache-buster alone.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from flask import request

from webapp.api.errors import ApiError, invalid_body, malformed

_TYPE_NAMES = {str: "a string", bool: "true or false", int: "a whole number", list: "a list"}

#: a field that may be a string or ``null`` (``null`` clears what it sets)
NULLABLE_STR = (str, type(None))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _text_problem(value: Any) -> bool:
    """Whether any string in ``value`` (keys included) cannot be stored as text.

    A walk with a list, not recursion: a body nested as deep as the JSON parser
    allows must not run out of stack here.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def json_body() -> dict[str, Any]:
    """The request's JSON object, or {} when there is no body."""
    # Decided by the headers: a form body may already have been parsed (and consumed).
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if ((request.content_length or 0) > 0 or chunked) and not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "Send the request body as JSON (Content-Type: application/json).",
        )
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH: 413 from Werkzeug
    if not raw:
        return {}
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise malformed("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise malformed("The request body must be a JSON object.")
    if _text_problem(data):
        raise malformed("The request body holds text that is not valid Unicode or contains NUL.")
    return data


def fields(
    body: dict[str, Any],
    *,
    required: dict[str, type | tuple[type, ...]] | None = None,
    optional: dict[str, type | tuple[type, ...]] | None = None,
) -> dict[str, Any]:
    """The accepted fields of ``body``, type-checked; 400 listing every problem otherwise."""
    required = required or {}
    optional = optional or {}
    problems: dict[str, str] = {}
    for name in body:
        if name not in required and name not in optional:
            problems[name] = "Unknown field."
    for name, kind in {**required, **optional}.items():
        if name not in body:
            if name in required:
                problems[name] = "This field is required."
            continue
        value = body[name]
        if kind is int and type(value) is float and value.is_integer():
            value = body[name] = int(value)  # 30.0 is a whole number in JSON Schema too
        # bool is a subclass of int, and JSON null is not "absent": check exactly.
        if kind == NULLABLE_STR:
            if type(value) not in NULLABLE_STR:
                problems[name] = "Must be a string or null."
        elif type(value) is not kind:
            problems[name] = f"Must be {_TYPE_NAMES[kind]}."
    if problems:
        raise invalid_body(problems)
    return {name: body[name] for name in body}


def only_query(allowed: Collection[str] = ()) -> None:
    """Refuse query parameters other than ``allowed`` (400 ``invalid_query``)."""
    unknown = set(request.args) - set(allowed)
    if unknown:
        raise ApiError(
            400,
            "invalid_query",
            "The query has parameters this endpoint does not take.",
            {name: "Unknown parameter." for name in sorted(unknown)},
        )


def no_query_on_changes() -> None:
    """For a blueprint's ``before_request``: no endpoint that changes something takes query
    parameters, so one that came is a mistake the client must hear of, not a filter."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        only_query()
