"""Scopes on every /api endpoint, table-driven from the app's own URL map.

A new endpoint under /api fails here until webapp/tokens/scopes.py gives it
a rule; until then tokens are refused there (deny by default).
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import ADMIN_EMAIL, AuthActions
from tests.token_helpers import ALICE, audit_rows, call, issue
from webapp.tokens.policy import SCOPES
from webapp.tokens.scopes import ENDPOINT_SCOPES, PUBLIC, SESSION_ONLY, required_scope

TOKEN_REFUSALS = {"invalid_token", "insufficient_scope", "token_not_allowed", "ip_not_allowed"}
#: a value for every URL argument an /api route takes
ARGUMENTS = {"provider_id": "groq", "provider": "groq", "token_id": None}


def api_routes(app) -> list[tuple[str, str, str]]:
    """(method, path template, endpoint) for every /api route."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule == "/api" or rule.rule.startswith("/api/"):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((method, rule.rule, rule.endpoint))
    return sorted(routes)


def fill(template: str, token_id: int) -> str:
    values = {**ARGUMENTS, "token_id": str(token_id)}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], template)


def send(client, method: str, path: str, token: str):
    body = {} if method != "GET" else None
    return call(client, method, path, token, json=body)


def refused_by_token(response) -> str | None:
    if response.status_code not in (401, 403) or not response.is_json:
        return None
    code = response.get_json()["error"]["code"]
    return code if code in TOKEN_REFUSALS else None


def test_every_api_endpoint_has_a_scope_rule(app):
    endpoints = {endpoint for _, _, endpoint in api_routes(app)}
    assert endpoints, "no /api routes found"
    missing = sorted(endpoints - set(ENDPOINT_SCOPES))
    assert missing == [], f"give these endpoints a rule in webapp/tokens/scopes.py: {missing}"
    stale = sorted(set(ENDPOINT_SCOPES) - endpoints)
    assert stale == [], f"rules for endpoints that no longer exist: {stale}"
    assert set(ENDPOINT_SCOPES.values()) <= set(SCOPES) | {PUBLIC, SESSION_ONLY}


def test_the_rules_follow_what_each_scope_means(app):
    for method, template, endpoint in api_routes(app):
        needed = required_scope(endpoint)
        if method not in ("GET", "HEAD"):
            assert needed not in ("keys:read", "audit:read"), f"{method} {template}: read scope"
        if endpoint.startswith(("tokens_api.", "admin", "setup")) or "initial" in endpoint:
            if endpoint != "tokens_api.resolve_key":
                assert needed == SESSION_ONLY, f"{endpoint} must stay closed to tokens"
    assert required_scope("tokens_api.resolve_key") == "keys:resolve"


def test_an_endpoint_without_a_rule_is_closed_to_tokens():
    assert required_scope("api.some_new_endpoint") == SESSION_ONLY


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_a_token_reaches_exactly_the_endpoints_its_scope_allows(app, user_client, scope):
    client = user_client(ALICE)
    target_id, _ = issue(app, name="target")
    _, token = issue(app, scopes=[scope])
    outcomes = {}
    for method, template, endpoint in api_routes(app):
        response = send(client, method, fill(template, target_id), token)
        outcomes[(method, template)] = (required_scope(endpoint), refused_by_token(response))
    for (method, template), (needed, refusal) in outcomes.items():
        if needed in (PUBLIC, scope):
            assert refusal is None, f"{method} {template} needs {needed} and was refused"
        elif needed == SESSION_ONLY:
            assert refusal == "token_not_allowed", f"{method} {template} let a token in"
        else:
            assert refusal == "insufficient_scope", f"{method} {template} without {needed}"
    denials = audit_rows(app, "access.denied")
    refused = [o for o in outcomes.values() if o[1] is not None]
    assert len(denials) == len(refused) and refused
    assert {d.details["reason"] for d in denials} == {"token_scope"}


def test_even_an_admins_token_with_every_scope_never_acts_as_admin(app):
    _, token = issue(app, ADMIN_EMAIL, scopes=list(SCOPES))
    client = app.test_client()
    session_only = [r for r in api_routes(app) if required_scope(r[2]) == SESSION_ONLY]
    assert any(endpoint == "api.set_initial" for _, _, endpoint in session_only)
    for method, template, _ in session_only:
        response = send(client, method, fill(template, 1), token)
        assert refused_by_token(response) == "token_not_allowed", (method, template)
    for method, template, endpoint in api_routes(app):
        if required_scope(endpoint) not in (SESSION_ONLY,):
            response = send(client, method, fill(template, 1), token)
            assert refused_by_token(response) is None, (method, template)


def test_the_insufficient_scope_answer_names_the_scope_needed(app, user_client):
    user_client(ALICE)
    _, token = issue(app, scopes=["keys:read"])
    response = call(app.test_client(), "DELETE", "/api/api-keys/groq", token)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert 'scope="keys:write"' in response.headers["WWW-Authenticate"]


def test_an_unknown_api_path_still_checks_the_token(app):
    response = call(app.test_client(), "GET", "/api/no-such-thing", "khp_nope")
    assert response.status_code == 401


def test_a_token_refused_again_and_again_leaves_one_audit_row_a_run(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_TOKEN="1000/minute")
    AuthActions(app.test_client()).register(ALICE)
    _, token = issue(app, scopes=["keys:read"])
    client = app.test_client()
    for _ in range(5):
        refused = call(client, "POST", "/api/api-keys/validate/openai", token, json={})
        assert refused_by_token(refused) == "insufficient_scope"
    call(client, "GET", "/api/audit", token)  # another endpoint it may not use
    denials = audit_rows(app, "access.denied")
    assert [d.details["endpoint"] for d in denials] == ["api.validate_key", "audit_api.list_events"]
