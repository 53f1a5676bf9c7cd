"""The OpenAPI document: valid, complete, and true to what the API really answers."""

from __future__ import annotations

import json
import re
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import ADMIN_EMAIL, AuthActions
from webapp.auth.services import find_user
from webapp.keys.service import store_key
from webapp.tokens import format as token_format
from webapp.tokens import service as token_service
from webapp.tokens.policy import SCOPES
from webapp.tokens.scopes import PUBLIC, SESSION_ONLY, required_scope

BASE_URL = "https://llm.example.com/v1"

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
#: examples per operation and mode: 10 operations x (24 + 12) stay in the low hundreds
EXAMPLES = {GenerationMode.POSITIVE: 24, GenerationMode.NEGATIVE: 12}
TIME_BUDGET = 50.0  # seconds for the whole fuzz pass


def document(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(client):
    spec = document(client)
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema


def test_the_document_names_the_one_answer_that_holds_a_key(client):
    spec = document(client)
    resolve = spec["paths"]["/api/keys/resolve/{provider}"]["post"]
    schema = resolve["responses"]["200"]["content"]["application/json"]["schema"]
    assert "api_key" in json.dumps(schema) or "ResolvedKey" in json.dumps(schema)
    assert "except `POST /api/keys/resolve/{provider}`" in spec["info"]["description"]


def _api_routes(app) -> dict[str, set[str]]:
    """Each API path with its methods; a path also served without its trailing slash (the same
    view under both spellings) is one path, as the document has it."""
    routes: dict[str, set[str]] = {}
    rules = list(app.url_map.iter_rules())
    spellings = {(rule.rule, rule.endpoint) for rule in rules}
    for rule in rules:
        if rule.rule == "/api" or rule.rule.startswith("/api/"):
            spelt = rule.rule + "/" if (rule.rule + "/", rule.endpoint) in spellings else rule.rule
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", spelt)
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            routes.setdefault(path, set()).update(methods)
    return routes


def test_every_api_route_is_documented_and_nothing_else(app, client):
    spec = document(client)
    documented = {
        path: {m for m in item if m in HTTP_METHODS} for path, item in spec["paths"].items()
    }
    assert _api_routes(app) == documented


def test_documented_path_parameters_match_the_routes(client):
    for path, item in document(client)["paths"].items():
        in_path = set(re.findall(r"\{(\w+)\}", path))
        for method, operation in item.items():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == in_path, (method, path)


def _filled(path: str, token_id: int) -> str:
    return path.replace("{provider}", "groq").replace("{token_id}", str(token_id))


def test_each_operation_names_the_one_scope_a_token_needs(app, client):
    # What the document promises a script is what the server enforces, operation by
    # operation (a frontend's session aside).
    spec = document(client)
    with app.app_context():
        rules = {
            (re.sub(r"<(?:[^<>]+:)?([^<>:]+)>", r"{\1}", rule.rule), method.lower()): rule
            for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}
        }
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            bearer = [s["bearer"] for s in operation.get("security", []) if "bearer" in s]
            scope = required_scope(rules[(path, method)].endpoint)
            if scope not in (PUBLIC, SESSION_ONLY):
                assert bearer == [[scope]], f"{method.upper()} {path}: {bearer}"
                checked += 1
            else:
                assert bearer == [], f"{method.upper()} {path}: {bearer}"
    assert checked >= 5
    assert spec["security"] == [{"session": []}]


def test_every_answer_to_an_access_token_is_documented(app, client):
    """Tokens are checked on every /api operation, even where no credential is needed."""
    spec = document(client)
    with app.app_context():
        admin = find_user(ADMIN_EMAIL)
        issued = {
            name: token_service.create_token(admin, token_service.clean_spec(name, *args)).token
            for name, args in {
                "readable": (["keys:read"], 1, []),
                "elsewhere": (list(SCOPES), 1, ["192.0.2.0/24"]),
            }.items()
        }
        token_id = token_service.list_tokens(admin)[0].id
    credentials = {
        "made up": (token_format.generate(), 401),
        "from another address": (issued["elsewhere"], 403),
        "with keys:read": (issued["readable"], None),
    }
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for name, (token, expected) in credentials.items():
                response = client.open(
                    _filled(path, token_id),
                    method=method.upper(),
                    headers={"Authorization": f"Bearer {token}"},
                    json={} if method != "get" else None,
                    csrf=False,
                )
                where = f"{method.upper()} {path} with a token {name}"
                assert expected in (None, response.status_code), where
                assert str(response.status_code) in operation["responses"], where


@pytest.fixture
def fuzz_app(make_app):
    app = make_app()
    inner = app.wsgi_app

    def with_client_address(environ, start_response):
        # Schemathesis's WSGI client leaves REMOTE_ADDR out; every real server sets it.
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        if environ["REMOTE_ADDR"] is None:
            environ["REMOTE_ADDR"] = "127.0.0.1"
        return inner(environ, start_response)

    app.wsgi_app = with_client_address
    return app


def _signed_in_admin(app) -> tuple[dict[str, str], dict[str, str]]:
    """The cookies and headers of a signed-in admin's frontend (its User-Agent too)."""
    agent = "keyhold-api-fuzz"
    browser = app.test_client()
    browser.environ_base["HTTP_USER_AGENT"] = agent
    assert AuthActions(browser).login(ADMIN_EMAIL).status_code == 302
    token = browser.get("/api/csrf-token").get_json()["csrf_token"]
    cookies = {"session": browser.get_cookie("session").value}
    return cookies, {"X-CSRFToken": token, "User-Agent": agent}


def _admin_tokens(app) -> dict:
    """An access token with every scope for the admin, and a token of theirs for each
    operation that needs one to exist (its id replaces the documented example's)."""
    with app.app_context():
        admin = find_user(ADMIN_EMAIL)
        everything = token_service.clean_spec("fuzz", list(SCOPES), 1, [])
        token = token_service.create_token(admin, everything).token
        ids = [token_service.create_token(admin, everything).row.id for _ in range(2)]
    return {
        "bearer": token,
        "path": {
            "POST /api/tokens/{token_id}/rotate": {"token_id": ids[0]},
            "DELETE /api/tokens/{token_id}": {"token_id": ids[1]},
        },
    }


def _restore_admin_key(app) -> None:
    """The admin's own key for the example provider, which earlier operations may delete."""
    with app.app_context():
        store_key(
            find_user(ADMIN_EMAIL), "custom", "gw-example-0123456789abcdef", {"base_url": BASE_URL}
        )


def _token_only(case) -> bool:
    """Whether the operation takes an access token and no browser session."""
    security = case.operation.definition.raw.get("security") or []
    return bool(security) and not any("session" in option for option in security)


def _credentials(case, auth: dict) -> dict:
    """The admin's cookie and CSRF header, except where the case deliberately breaks them.

    A negative case may drop or mangle a security parameter (the session
    cookie, the CSRF or setup token header); then it is sent as generated, so
    the check sees the app refuse it rather than the admin's real credentials.
    """
    negated = {
        location
        for location, part in (case.meta.components if case.meta else {}).items()
        if part.mode.is_negative
    }
    kwargs: dict = {"headers": {"User-Agent": auth["headers"]["User-Agent"]}}
    if _token_only(case):
        if ParameterLocation.HEADER not in negated:
            kwargs["headers"]["Authorization"] = f"Bearer {auth['bearer']}"
        return kwargs
    if ParameterLocation.HEADER not in negated:
        kwargs["headers"] = auth["headers"]
    if ParameterLocation.COOKIE not in negated:
        kwargs["cookies"] = auth["cookies"]
    return kwargs


def _run(
    strategy, examples: int, checks: list, auth: dict, calls: list, path: dict | None = None
) -> None:
    """Call the app with ``examples`` cases drawn from ``strategy``; raise on the first failure.

    ``path`` replaces the path parameters it names for an operation (ids of things that exist).
    """

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        for name, value in (path or {}).get(case.operation.label, {}).items():
            case.path_parameters[name] = value
        response = case.call(**_credentials(case, auth))
        calls.append((case.operation.label, response.status_code))
        case.validate_response(response, checks=checks)

    run()


def test_fuzzing_finds_no_server_error_and_no_answer_off_the_schema(fuzz_app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    cookies, headers = _signed_in_admin(fuzz_app)
    auth = {"headers": headers, "cookies": cookies, **_admin_tokens(fuzz_app)}
    calls: list[tuple[str, int]] = []
    started = time.monotonic()
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        _restore_admin_key(fuzz_app)
        # The document's examples first: they take the paths that succeed.
        for example in operation.get_strategies_from_examples():
            _run(example, 1, CHECKS, auth, calls, path=auth["path"])
        positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        _run(positive, EXAMPLES[GenerationMode.POSITIVE], CHECKS, auth, calls)
        raw = operation.definition.raw
        if raw.get("parameters") or raw.get("requestBody"):  # something to get wrong
            negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
            checks = [*CHECKS, negative_data_rejection]
            _run(negative, EXAMPLES[GenerationMode.NEGATIVE], checks, auth, calls)
    elapsed = time.monotonic() - started

    assert elapsed < TIME_BUDGET, f"the fuzz pass took {elapsed:.1f}s"
    # Bounded: at most the examples asked for (and a few documented ones) per operation.
    most = sum(EXAMPLES.values()) + 3
    assert 10 * operations <= len(calls) <= most * operations
    assert not [c for c in calls if c[1] >= 500]
    # The pass reached every operation as a signed-in admin, not only the 401 wall.
    succeeded = {label for label, status in calls if status < 300}
    assert succeeded == {label for label, _ in calls}, "some operation never succeeded"
