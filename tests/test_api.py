"""The JSON API as a frontend or a script meets it: every endpoint, every way to get it wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ADMIN_EMAIL, AuthActions
from tests.fakekeys import fake_key
from tests.helpers import bodyless, rows_of, store
from webapp.audit.models import AuditEvent
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey
from webapp.providers.catalog import all_providers

USER = "alice@example.com"
STATUS_FIELDS = {
    "provider",
    "has_key",
    "source",
    "masked_key",
    "status",
    "is_valid",
    "last_validated",
    "last_error",
    "models",
    "updated_at",
    "expires_at",
    "expiring_soon",
    "http_status",
    "elapsed_ms",
    "quota_checked",
    "facts",
}

# method, path, a body that is right for it (None: it takes none)
ENDPOINTS = [
    ("GET", "/api/providers", None),
    ("POST", "/api/api-keys/set", {"provider": "groq", "api_key": "gsk_" + "a" * 52}),
    ("POST", "/api/api-keys/validate/groq", {}),
    ("GET", "/api/api-keys/status", None),
    ("DELETE", "/api/api-keys/groq", None),
    ("DELETE", "/api/api-keys/", None),
    ("POST", "/api/api-keys/set-initial", {"provider": "groq", "api_key": "gsk_" + "a" * 52}),
    ("GET", "/api/api-keys/status-initial", None),
]
UNSAFE = [e for e in ENDPOINTS if e[0] != "GET"]
SESSION_ONLY = [e for e in ENDPOINTS if "initial" not in e[1]]


def error_of(response) -> dict:
    assert response.is_json, response.get_data(as_text=True)[:200]
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


def raw(client, method: str, path: str, data, content_type="application/json", **headers):
    """A request with a body exactly as given, and the CSRF header a frontend would send."""
    headers.setdefault("X-CSRFToken", client.csrf_token())
    return client.open(
        path, method=method, data=data, content_type=content_type, headers=headers, csrf=False
    )


@pytest.fixture
def alice(user_client):
    return user_client(USER)


# -- the same failures on every endpoint --------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), SESSION_ONLY)
def test_unauthenticated_gets_401_json_not_a_redirect(client, method, path, body):
    response = client.open(path, method=method, json=body or {})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"
    assert "Location" not in response.headers


@pytest.mark.parametrize(("method", "path", "body"), [e for e in SESSION_ONLY if e[0] != "GET"])
def test_a_script_without_a_session_hears_401_not_a_csrf_error(app, method, path, body):
    # No cookie at all, no CSRF token: nothing to forge, so the answer is what is missing.
    response = app.test_client().open(path, method=method, json=body or {}, csrf=False)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"


def test_a_signed_in_browser_still_needs_the_csrf_token(alice):
    response = alice.post("/api/api-keys/set", json={"provider": "groq"}, csrf=False)
    assert response.status_code == 400 and error_of(response)["code"] == "csrf_failed"


def test_unauthenticated_global_key_calls(client):
    body = {"provider": "groq", "api_key": fake_key("groq")}
    response = client.post("/api/api-keys/set-initial", json=body)
    assert response.status_code == 401 and error_of(response)["code"] == "unauthenticated"
    # A script with no cookie (and so no CSRF token) is told the same, not "csrf_failed".
    script = client.application.test_client().post(
        "/api/api-keys/set-initial", json=body, csrf=False
    )
    assert script.status_code == 401 and error_of(script)["code"] == "unauthenticated"
    assert client.get("/api/api-keys/status-initial").get_json() == {"setup_complete": True}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_wrong_method_is_405_with_allow(alice, method, path, body):
    response = alice.open(path, method="PUT", json={})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert method in response.headers["Allow"] and "PUT" not in response.headers["Allow"]


@pytest.mark.parametrize("path", ["status", "set", "expiring", "set-initial", "status-initial"])
def test_a_fixed_path_is_no_provider_to_delete(alice, path):
    # Beside DELETE /api/api-keys/<provider>: a method the path does not offer, not a
    # provider named after it (404 "unknown provider", or a 400 about the body).
    response = alice.delete(f"/api/api-keys/{path}", json={"provider": "groq"})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "DELETE" not in response.headers["Allow"]


def test_before_setup_a_wrong_method_is_still_405(make_app):
    # The setup gate lets requests through to what they need before setup; a method a
    # path does not offer is answered as such, not with "set up first".
    client = make_app(fresh=True).test_client()
    for method, path in [("TRACE", "/api/csrf-token"), ("PUT", "/api/api-keys/status-initial")]:
        response = client.open(path, method=method)
        assert response.status_code == 405, path
        assert error_of(response)["code"] == "method_not_allowed"
        assert method not in response.headers["Allow"]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_malformed_json_is_400(admin_client, method, path, body):
    for data in ('{"provider": "groq",', "{'single': 'quotes'}", '{"n": NaN}', "[" * 5000):
        response = raw(admin_client, method, path, data)
        assert response.status_code == 400, data
        assert error_of(response)["code"] == "malformed_json"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_json_nested_as_deep_as_the_parser_allows_is_400(admin_client, method, path, body):
    for depth in (400, 800):
        data = '{"provider": ' * depth + '"groq"' + "}" * depth
        response = raw(admin_client, method, path, data)
        assert response.status_code == 400, depth
        assert error_of(response)["code"] in ("malformed_json", "invalid_body")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_body_that_is_not_an_object_is_400(admin_client, method, path, body):
    for data in ("[]", '"text"', "42", "null"):
        response = raw(admin_client, method, path, data)
        assert response.status_code == 400, data
        assert error_of(response)["code"] == "malformed_json"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_wrong_types_and_unknown_fields_are_400_with_fields(admin_client, method, path, body):
    wrong = {**(body or {}), "surprise": 1}
    if body and "api_key" in body:
        wrong.update(api_key=12345, validate="yes")
    response = admin_client.open(path, method=method, json=wrong)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_body" and error["fields"]["surprise"] == "Unknown field."
    if body and "api_key" in body:
        assert error["fields"]["api_key"] == "Must be a string."
        assert error["fields"]["validate"] == "Must be true or false."


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE)
def test_a_change_refuses_query_parameters(admin_client, emulator, method, path, body):
    # "?provider=groq" on the delete-all call, "?validate=false" on a save: a parameter the
    # endpoint does not take must not be quietly ignored while the call does something else.
    response = admin_client.open(f"{path}?provider=groq&validate=false", method=method, json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_query"
    assert error["fields"] == {"provider": "Unknown parameter.", "validate": "Unknown parameter."}
    assert emulator.received() == []


def test_a_delete_all_with_a_filter_deletes_nothing(app, alice):
    store(app, USER, "groq")
    store(app, USER, "openai")
    response = alice.delete("/api/api-keys/?provider=groq", json={})
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_query"
    assert {row.provider for row in rows_of(app, USER)} == {"groq", "openai"}


def test_a_read_leaves_a_cache_buster_alone(alice):
    assert alice.get("/api/api-keys/status?_=1733300000000").status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_oversized_body_is_413(admin_client, method, path, body):
    big = json.dumps({"api_key": "x" * (70 * 1024)})
    response = raw(admin_client, method, path, big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_a_body_that_is_not_json_is_415(admin_client, method, path, body):
    response = raw(admin_client, method, path, "provider=groq", "application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE)
def test_missing_csrf_header_is_refused_and_changes_nothing(app, admin_client, method, path, body):
    admin_client.post(
        "/api/api-keys/set",
        json={"provider": "groq", "api_key": fake_key("groq"), "validate": False},
    )
    before = rows_of(app, "admin@example.com")
    response = admin_client.open(path, method=method, json=body or {}, csrf=False)
    assert response.status_code == 400
    assert error_of(response)["code"] == "csrf_failed"
    after = rows_of(app, "admin@example.com")
    assert [(r.provider, r.encrypted_key) for r in after] == [
        (r.provider, r.encrypted_key) for r in before
    ]
    with app.app_context():
        assert db.session.scalar(db.select(GlobalAPIKey)) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/api-keys/set", {"provider": "nope", "api_key": "x" * 20}),
        ("POST", "/api/api-keys/validate/nope", {}),
        ("DELETE", "/api/api-keys/nope", None),
        ("POST", "/api/api-keys/set-initial", {"provider": "nope", "api_key": "x" * 20}),
    ],
)
def test_unknown_provider_is_404(admin_client, method, path, body):
    response = admin_client.open(path, method=method, json=body or {})
    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_provider"


def test_api_responses_are_not_cached(alice):
    for path in ("/api/api-keys/status", "/api/providers", "/api/csrf-token"):
        assert alice.get(path).headers["Cache-Control"] == "no-store"


# -- each endpoint doing its job ----------------------------------------------


def test_csrf_token_endpoint_gives_a_token_that_works(app):
    client = app.test_client()
    AuthActions(client).register(USER)
    token = client.get("/api/csrf-token").get_json()["csrf_token"]
    response = client.delete("/api/api-keys/", headers={"X-CSRFToken": token}, csrf=False)
    assert response.status_code == 200 and response.get_json() == {"deleted": 0}


def test_providers(alice):
    body = alice.get("/api/providers").get_json()
    ids = [p["id"] for p in body["providers"]]
    assert ids == [p.id for p in all_providers()]
    azure = next(p for p in body["providers"] if p["id"] == "azure_openai")
    assert [f["name"] for f in azure["fields"]] == ["endpoint", "api_version"]
    assert azure["fields"][1]["default"] == "2024-10-21" and azure["docs_url"].startswith("https")
    openai = next(p for p in body["providers"] if p["id"] == "openai")
    assert openai["fields"] == [] and "sk-" in openai["key_format"]


def test_set_creates_then_replaces_and_never_returns_the_key(app, alice, emulator):
    key = emulator.valid_key("openai")
    response = alice.post("/api/api-keys/set", json={"provider": "openai", "api_key": key})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == STATUS_FIELDS
    assert body["status"] == "valid" and body["is_valid"] is True and body["source"] == "user"
    assert body["masked_key"] == f"sk-proj-\u2026{key[-4:]}" and body["models"]
    assert body["last_validated"].endswith("Z") and body["expiring_soon"] is False
    assert key not in response.get_data(as_text=True)

    second = emulator.valid_key("openai")
    response = alice.post("/api/api-keys/set", json={"provider": "openai", "api_key": second})
    assert response.status_code == 200 and response.get_json()["masked_key"].endswith(second[-4:])
    assert len(rows_of(app, USER)) == 1
    with app.app_context():
        actions = db.session.scalars(
            db.select(AuditEvent.action).where(AuditEvent.action.like("key.%"))
        ).all()
    assert actions.count("key.set") == 1 and actions.count("key.replace") == 1


def test_set_without_validation_does_not_ask_the_provider(alice, emulator):
    body = {"provider": "groq", "api_key": fake_key("groq"), "validate": False}
    response = alice.post("/api/api-keys/set", json=body)
    assert response.status_code == 201 and response.get_json()["status"] == "unchecked"
    assert emulator.received("groq") == []


def test_a_rejected_key_is_422_with_the_providers_reason_and_not_stored(app, alice, emulator):
    response = alice.post(
        "/api/api-keys/set", json={"provider": "groq", "api_key": fake_key("groq")}
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "key_rejected" and "Groq rejected the key" in error["message"]
    assert "The provider said" in error["fields"]["api_key"]
    assert rows_of(app, USER) == []


def test_a_key_in_the_wrong_format_is_422_before_any_request(app, alice, emulator):
    response = alice.post("/api/api-keys/set", json={"provider": "groq", "api_key": "sk-nope"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_input" and "key for Groq" in error["fields"]["api_key"]
    assert emulator.received() == [] and rows_of(app, USER) == []


def test_provider_fields_belong_to_their_provider(alice, emulator):
    body = {"provider": "groq", "api_key": fake_key("groq"), "base_url": "https://x.example"}
    response = alice.post("/api/api-keys/set", json=body)
    assert response.status_code == 422
    assert error_of(response)["fields"] == {"base_url": "Groq takes no base_url."}
    custom = {"provider": "custom", "api_key": fake_key("custom"), "validate": False}
    response = alice.post("/api/api-keys/set", json=custom)
    assert response.status_code == 422
    assert "base_url" in error_of(response)["fields"]
    custom["base_url"] = "https://llm.example.com/v1"
    assert alice.post("/api/api-keys/set", json=custom).status_code == 201


@pytest.mark.parametrize(
    "base_url",
    [
        "https://llm.example.com/v 1",
        "https://llm.exa\nmple.com/v1",
        "https://llm.example.com/\tv1",
        "https://llm.example.com/v1\x1b",
        "https://llm.example\u200b.com/v1",
    ],
)
def test_malformed_settings_are_422_and_nothing_is_stored_or_sent(app, alice, emulator, base_url):
    # (A NUL never gets this far: the body parser refuses it for every field.)
    body = {"provider": "custom", "api_key": fake_key("custom"), "base_url": base_url}
    response = alice.post("/api/api-keys/set", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_input" and set(error["fields"]) == {"base_url"}
    assert rows_of(app, USER) == [] and emulator.received() == []


def test_a_base_url_is_stored_as_it_was_checked(app, alice):
    body = {
        "provider": "custom",
        "api_key": fake_key("custom"),
        "base_url": "HTTPS://LLM.Example.COM./v1/",
        "validate": False,
    }
    assert alice.post("/api/api-keys/set", json=body).status_code == 201
    assert rows_of(app, USER)[0].config == {"base_url": "https://llm.example.com/v1"}


def test_a_provider_outage_stores_the_key_and_says_so(alice, emulator):
    emulator.set_mode("mistral", "down")
    response = alice.post("/api/api-keys/set", json={"provider": "mistral", "api_key": "a" * 32})
    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "provider_error" and body["is_valid"] is None and body["last_error"]


def test_validate_a_stored_key(app, alice, emulator):
    key = emulator.valid_key("anthropic")
    store(app, USER, "anthropic", key)
    response = bodyless(alice, "POST", "/api/api-keys/validate/anthropic")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "valid" and body["models"] and set(body) == STATUS_FIELDS
    emulator.set_mode("anthropic", "down")
    assert alice.post("/api/api-keys/validate/anthropic", json={}).get_json()["status"] == (
        "provider_error"
    )
    missing = alice.post("/api/api-keys/validate/azure_openai", json={})
    assert missing.status_code == 404 and error_of(missing)["code"] == "key_not_found"
    assert error_of(missing)["message"] == "You have no stored key for Azure OpenAI."


def test_status_lists_every_provider_with_the_source_in_use(app, alice, admin_client, emulator):
    store(app, USER, "openai")
    admin_client.post(
        "/api/api-keys/set-initial",
        json={"provider": "groq", "api_key": fake_key("groq"), "validate": False},
    )
    body = alice.get("/api/api-keys/status").get_json()
    entries = {s["provider"]: s for s in body["providers"]}
    assert list(entries) == [p.id for p in all_providers()]
    assert all(set(s) == STATUS_FIELDS for s in entries.values())
    assert (entries["openai"]["has_key"], entries["openai"]["source"]) == (True, "user")
    assert (entries["groq"]["has_key"], entries["groq"]["source"]) == (False, "global")
    assert entries["groq"]["masked_key"] is None  # the global key's hint is not the user's
    assert (entries["cohere"]["has_key"], entries["cohere"]["source"]) == (False, "none")


def test_expiry_is_reported(app, alice):
    from datetime import timedelta

    from webapp.db_types import utcnow
    from webapp.keys.models import UserAPIKey

    store(app, USER, "openai")
    store(app, USER, "groq")
    with app.app_context():
        for provider, days in (("openai", 3), ("groq", 30)):
            db.session.execute(
                db.update(UserAPIKey)
                .filter_by(provider=provider)
                .values(expires_at=utcnow() + timedelta(days=days))
            )
        db.session.commit()
    entries = {s["provider"]: s for s in alice.get("/api/api-keys/status").get_json()["providers"]}
    assert entries["openai"]["expiring_soon"] is True and entries["openai"]["expires_at"]
    assert entries["groq"]["expiring_soon"] is False
    assert entries["cohere"]["expires_at"] is None and entries["cohere"]["expiring_soon"] is False


def test_delete_one_key(app, alice):
    store(app, USER, "groq")
    response = bodyless(alice, "DELETE", "/api/api-keys/groq")
    assert response.status_code == 200 and response.get_json()["has_key"] is False
    assert rows_of(app, USER) == []
    again = bodyless(alice, "DELETE", "/api/api-keys/groq")
    assert again.status_code == 404 and error_of(again)["code"] == "key_not_found"


def test_delete_all_keys(app, alice):
    for provider in ("groq", "openai", "mistral"):
        store(app, USER, provider)
    response = bodyless(alice, "DELETE", "/api/api-keys/")
    assert response.status_code == 200 and response.get_json() == {"deleted": 3}
    assert rows_of(app, USER) == []
    # Again, with nothing left: it changes nothing, so it is not one more audit row each time.
    for _ in range(3):
        assert bodyless(alice, "DELETE", "/api/api-keys/").get_json() == {"deleted": 0}
    with app.app_context():
        query = db.select(AuditEvent.details).filter_by(action="key.clear_all")
        assert list(db.session.scalars(query)) == [
            {"count": 3, "providers": ["groq", "mistral", "openai"]}
        ]


def test_another_users_keys_are_not_found(app, alice, user_client):
    store(app, USER, "groq")
    bob = user_client("bob@example.com")
    assert bodyless(bob, "POST", "/api/api-keys/validate/groq").status_code == 404
    assert bodyless(bob, "DELETE", "/api/api-keys/groq").status_code == 404
    assert bodyless(bob, "DELETE", "/api/api-keys/").get_json() == {"deleted": 0}
    groq = next(
        s
        for s in bob.get("/api/api-keys/status").get_json()["providers"]
        if s["provider"] == "groq"
    )
    assert groq["has_key"] is False and groq["masked_key"] is None
    assert [r.provider for r in rows_of(app, USER)] == ["groq"]


# -- global keys ----------------------------------------------------------------


def test_the_setup_calls_work_before_setup_and_the_rest_waits(make_app):
    client = make_app(fresh=True).test_client()
    for path in ("/api/csrf-token", "/api/openapi.json", "/api/api-keys/status-initial"):
        assert client.get(path).status_code == 200, path
    for path in ("/api/providers", "/api/api-keys/status"):
        response = client.get(path)
        assert response.status_code == 503 and error_of(response)["code"] == "setup_required"


def test_set_initial_with_the_setup_token_before_setup(make_app, emulator):
    app = make_app(fresh=True)
    client = app.test_client()
    client.get("/setup")
    token = Path(app.config["SETUP_TOKEN_FILE"]).read_text().strip()
    key = emulator.valid_key("groq")
    body = {"provider": "groq", "api_key": key}
    # No session, no CSRF token: the setup token alone authorises the call.
    response = client.post(
        "/api/api-keys/set-initial", json=body, headers={"X-Setup-Token": token}, csrf=False
    )
    assert response.status_code == 201
    status = response.get_json()
    assert status["status"] == "valid" and status["fallback_enabled"] is True
    assert key not in response.get_data(as_text=True)
    replaced = client.post(
        "/api/api-keys/set-initial",
        json={**body, "validate": False},
        headers={"X-Setup-Token": token},
        csrf=False,
    )
    # The same key, unchecked: what was known of it stands.
    assert replaced.status_code == 200 and replaced.get_json()["status"] == "valid"

    wrong = client.post(
        "/api/api-keys/set-initial", json=body, headers={"X-Setup-Token": "khs_wrong"}, csrf=False
    )
    assert wrong.status_code == 403 and error_of(wrong)["code"] == "setup_token_invalid"
    no_token = client.post("/api/api-keys/set-initial", json=body)
    assert no_token.status_code == 401

    seen = client.get("/api/api-keys/status-initial", headers={"X-Setup-Token": token}).get_json()
    assert seen["setup_complete"] is False
    groq = next(p for p in seen["providers"] if p["provider"] == "groq")
    assert groq["has_key"] is True and groq["masked_key"].startswith("gsk_\u2026")
    anonymous = client.get("/api/api-keys/status-initial").get_json()
    assert anonymous == {"setup_complete": False}
    bad = client.get("/api/api-keys/status-initial", headers={"X-Setup-Token": "nope"})
    assert bad.status_code == 403

    # After setup the token opens nothing.
    client.post("/setup/token", data={"token": token})
    client.post(
        "/setup/finish",
        data={"email": "root@example.com", "password": "p" * 12, "confirm": "p" * 12},
    )
    late = app.test_client().post(
        "/api/api-keys/set-initial", json=body, headers={"X-Setup-Token": token}, csrf=False
    )
    assert late.status_code == 403 and error_of(late)["code"] == "setup_finished"
    with app.app_context():  # refused, and on the record like a wrong token
        reasons = db.session.scalars(
            db.select(AuditEvent.details).filter_by(action="access.denied")
        ).all()
    assert [r["reason"] for r in reasons].count("setup_finished") == 1
    assert app.test_client().get("/api/api-keys/status-initial").get_json() == {
        "setup_complete": True
    }


def test_set_initial_refuses_non_admins_after_setup(app, alice, emulator):
    body = {"provider": "groq", "api_key": emulator.valid_key("groq")}
    response = alice.post("/api/api-keys/set-initial", json=body)
    assert response.status_code == 403 and error_of(response)["code"] == "admin_only"
    assert "providers" not in alice.get("/api/api-keys/status-initial").get_json()
    with app.app_context():
        assert db.session.scalar(db.select(GlobalAPIKey)) is None
        denied = db.session.scalars(db.select(AuditEvent).filter_by(action="access.denied")).all()
        assert [e.details["target"] for e in denied] == ["api.set_initial"]


def test_an_admin_sets_global_keys_through_the_api(app, admin_client, emulator):
    body = {"provider": "groq", "api_key": emulator.valid_key("groq")}
    response = admin_client.post("/api/api-keys/set-initial", json=body)
    assert response.status_code == 201 and response.get_json()["status"] == "valid"
    listed = admin_client.get("/api/api-keys/status-initial").get_json()
    assert listed["setup_complete"] is True
    assert [p["provider"] for p in listed["providers"] if p["has_key"]] == ["groq"]
    rejected = admin_client.post(
        "/api/api-keys/set-initial", json={"provider": "groq", "api_key": fake_key("groq")}
    )
    assert rejected.status_code == 422 and error_of(rejected)["code"] == "key_rejected"


# -- limits and failures ----------------------------------------------------------


def test_rate_limited_calls_get_429_with_retry_after(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_KEY_WRITE="2/minute")
    client = app.test_client()
    AuthActions(client).register(USER)
    body = {"provider": "groq", "api_key": fake_key("groq"), "validate": False}
    codes = [client.post("/api/api-keys/set", json=body).status_code for _ in range(3)]
    assert codes == [201, 200, 429]
    response = client.post("/api/api-keys/set", json=body)
    assert error_of(response)["code"] == "rate_limited"
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_setup_token_guesses_are_rate_limited(make_app):
    app = make_app(fresh=True, RATELIMIT_ENABLED=True, RATELIMIT_SETUP="3/minute")
    client = app.test_client()
    guess = {"X-Setup-Token": "khs_guess"}
    codes = [
        client.get("/api/api-keys/status-initial", headers=guess).status_code for _ in range(4)
    ]
    assert codes == [403, 403, 403, 429]
    body = {"provider": "groq", "api_key": fake_key("groq")}
    refused = client.post("/api/api-keys/set-initial", json=body, headers=guess, csrf=False)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    form = client.post("/setup/token", data={"token": "khs_guess"})  # the same budget
    assert form.status_code == 429
    # Asking whether setup is finished, without a token, is not a guess.
    assert client.get("/api/api-keys/status-initial").status_code == 200
    with app.app_context():  # one row for the run of refusals, saying what was counted
        (hit,) = db.session.scalars(db.select(AuditEvent).filter_by(action="ratelimit.hit"))
    assert hit.details["kind"] == "ip" and hit.ip == "127.0.0.1"


def test_an_admins_calls_to_set_initial_spend_no_setup_token_guesses(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_SETUP="2/minute")
    admin = app.test_client()
    assert AuthActions(admin).login(ADMIN_EMAIL).status_code == 302
    body = {"provider": "groq", "api_key": fake_key("groq"), "validate": False}
    codes = [admin.post("/api/api-keys/set-initial", json=body).status_code for _ in range(4)]
    assert codes == [201, 200, 200, 200]
    # The address's budget is whole: its guesses are refused as guesses, not as too many.
    guess = {"X-Setup-Token": "khs_guess"}
    codes = [
        admin.post("/api/api-keys/set-initial", json=body, headers=guess).status_code
        for _ in range(3)
    ]
    assert codes == [403, 403, 429]


def test_an_unexpected_failure_is_a_clean_500(make_app, monkeypatch):
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    AuthActions(client).register(USER)

    def explode(user):
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr("webapp.keys.statuses.list_status", explode)
    response = client.get("/api/api-keys/status")
    assert response.status_code == 500
    assert error_of(response) == {
        "code": "internal_error",
        "message": "Something went wrong on our side. Nothing was changed.",
    }
    assert "internal detail" not in response.get_data(as_text=True)


def test_delete_all_without_the_trailing_slash_is_the_same_call(app, alice):
    # A script writing the path without its slash gets the JSON answer, not an HTML redirect.
    store(app, USER, "groq")
    response = bodyless(alice, "DELETE", "/api/api-keys")
    assert response.status_code == 200 and response.get_json() == {"deleted": 1}


@pytest.mark.parametrize(
    "path",
    [
        "/api/api-keys/%2F",  # a provider id of "/", encoded as clients do
        "/api/api-keys//",  # an empty provider id
        "/api/api-keys/%2F%2F",
        "/api/api-keys///",
        "/api//api-keys/",
        "/api/api-keys//groq",
    ],
)
def test_a_delete_naming_no_provider_deletes_nothing(app, alice, path):
    # A path that is not one of the two delete calls is not one of them: neither routed to
    # "delete every key" nor redirected there (a 308 keeps the method for clients that follow).
    store(app, USER, "groq")
    store(app, USER, "openai")
    response = bodyless(alice, "DELETE", path)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert error_of(response)["code"] in ("not_found", "unknown_provider")
    assert {row.provider for row in rows_of(app, USER)} == {"groq", "openai"}
