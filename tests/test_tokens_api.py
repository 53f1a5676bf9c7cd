"""Managing tokens through the JSON API, and resolving keys with one."""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text

from tests.conftest import PASSWORD, AuthActions
from tests.fakekeys import fake_key
from tests.helpers import store
from tests.token_helpers import (
    ALICE,
    BOB,
    audit_rows,
    call,
    error_code,
    issue,
    token_row,
    update_token,
)
from webapp.auth.services import find_user
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys import global_keys
from webapp.keys.models import UserAPIKey
from webapp.tokens import format as token_format

PAYLOAD_FIELDS = {
    "id",
    "name",
    "hint",
    "scopes",
    "state",
    "created_at",
    "expires_at",
    "allowed_ips",
    "last_used_at",
    "last_used_ip",
    "use_count",
    "revoked_at",
    "grace_until",
    "replaced_by_id",
}


@pytest.fixture
def alice(app, user_client):
    return user_client(ALICE)


def create(client, **body):
    return client.post("/api/tokens", json={"name": "deploy bot", **body})


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_creating_a_token_shows_it_once(app, alice):
    response = create(alice, scopes=["keys:read", "keys:write"], allowed_ips=["2001:db8::/32"])
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    token = body["token"]
    assert token_format.check(token) == token
    payload = body["access_token"]
    assert set(payload) == PAYLOAD_FIELDS
    assert payload["hint"] == token[:8] and payload["state"] == "active"
    assert payload["scopes"] == ["keys:read", "keys:write"]
    assert payload["allowed_ips"] == ["2001:db8::/32"]
    expires = parse_time(payload["expires_at"]) - utcnow()
    assert timedelta(days=89) < expires <= timedelta(days=90)  # the default lifetime
    listed = alice.get("/api/tokens")
    assert listed.get_json()["tokens"] == [payload]
    assert token not in listed.get_data(as_text=True)
    [created] = audit_rows(app, "token.create")
    assert created.actor_user_id == token_row(app, payload["id"]).user_id
    assert created.details["hint"] == token[:8] and token not in str(created.details)


def test_defaults_read_only_and_resolve_must_be_chosen(app, alice):
    payload = create(alice).get_json()["access_token"]
    assert payload["scopes"] == ["keys:read"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["keys:admin"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 366}, "expires_in_days"),
        ({"no_expiry": True}, "no_expiry"),  # the field that was sent, not its default
        ({"allowed_ips": ["10.0.0.1/8"]}, "allowed_ips"),
        ({"allowed_ips": ["example.com"]}, "allowed_ips"),
        ({"allowed_ips": [f"10.0.0.{i}" for i in range(40)]}, "allowed_ips"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"name": "deploy\u202egnp.exe"}, "name"),  # shown reversed: a name that lies
        ({"name": "zero\u200bwidth"}, "name"),
    ],
)
def test_bad_requests_are_refused_with_the_field_named(app, alice, body, field):
    response = create(alice, **body)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and list(error["fields"]) == [field]
    assert alice.get("/api/tokens").get_json()["tokens"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"scopes": "keys:read"},
        {"expires_in_days": "30"},
        {"expires_in_days": 30.5},
        {"expires_in_days": True},
        {"allowed_ips": "10.0.0.1"},
        {"x": 1},
    ],
)
def test_wrong_types_and_unknown_fields_are_a_400(app, alice, body):
    response = create(alice, **body)
    assert response.status_code == 400 and error_code(response) == "invalid_body"


def test_a_whole_number_written_with_a_decimal_point_is_one(app, alice):
    # JSON Schema's "integer", which the API document uses, takes 30.0: so does the API.
    created = create(alice, expires_in_days=30.0)
    assert created.status_code == 201
    expires = parse_time(created.get_json()["access_token"]["expires_at"])
    assert timedelta(days=29) < expires - utcnow() <= timedelta(days=30)
    token_id = created.get_json()["access_token"]["id"]
    rotated = alice.post(f"/api/tokens/{token_id}/rotate", json={"grace_hours": 2.0})
    assert rotated.status_code == 201


def test_a_host_address_with_a_prefix_gets_a_suggestion(app, alice):
    error = create(alice, allowed_ips=["10.0.0.1/8"]).get_json()["error"]
    assert "did you mean 10.0.0.0/8" in error["fields"]["allowed_ips"]


def test_tokens_that_never_expire_only_when_the_admin_allows(make_app, user_client):
    app = make_app(TOKEN_ALLOW_NO_EXPIRY=True)
    client = app.test_client()
    AuthActions(client).register(ALICE)
    payload = create(client, no_expiry=True).get_json()["access_token"]
    assert payload["expires_at"] is None and payload["state"] == "active"
    both = create(client, no_expiry=True, expires_in_days=5)
    assert both.status_code == 422


def test_the_longest_lifetime_is_configurable(make_app):
    app = make_app(TOKEN_MAX_EXPIRY_DAYS=30, TOKEN_DEFAULT_EXPIRY_DAYS=7)
    client = app.test_client()
    AuthActions(client).register(ALICE)
    assert create(client, expires_in_days=31).status_code == 422
    payload = create(client).get_json()["access_token"]
    assert parse_time(payload["expires_at"]) - utcnow() <= timedelta(days=7)


def test_a_user_has_at_most_the_configured_number_of_working_tokens(make_app):
    app = make_app(TOKEN_MAX_PER_USER=2)
    client = app.test_client()
    AuthActions(client).register(ALICE)
    ids = [create(client).get_json()["access_token"]["id"] for _ in range(2)]
    refused = create(client)
    assert refused.status_code == 409 and error_code(refused) == "too_many_tokens"
    # Rotation swaps one for another, so it works at the limit...
    assert client.post(f"/api/tokens/{ids[0]}/rotate", json={}).status_code == 201
    client.delete(f"/api/tokens/{ids[1]}", json={})
    # ...but the old one counts while its grace period lasts: it still works.
    assert create(client).status_code == 409
    client.delete(f"/api/tokens/{ids[0]}", json={})
    assert create(client).status_code == 201


def test_at_the_limit_every_token_can_be_rotated_after_a_leak(make_app):
    # Rotating all of them at once: the tokens already rotated, in their grace period, do
    # not hold up the next rotation; creating a new token still counts them.
    app = make_app(TOKEN_MAX_PER_USER=3)
    client = app.test_client()
    AuthActions(client).register(ALICE)
    ids = [create(client).get_json()["access_token"]["id"] for _ in range(3)]
    for token_id in ids:
        assert client.post(f"/api/tokens/{token_id}/rotate", json={}).status_code == 201
    refused = create(client)
    assert refused.status_code == 409 and error_code(refused) == "too_many_tokens"


def test_rotating_again_and_again_keeps_to_the_limit(make_app):
    # Each rotation ends the grace period of the token its token replaced: a chain of
    # rotations leaves two tokens working (the newest and the one before), not all of them.
    app = make_app(TOKEN_MAX_PER_USER=2)
    client = app.test_client()
    AuthActions(client).register(ALICE)
    first = create(client).get_json()
    tokens, token_id = [first["token"]], first["access_token"]["id"]
    for _ in range(4):
        rotated = client.post(f"/api/tokens/{token_id}/rotate", json={})
        assert rotated.status_code == 201
        tokens.append(rotated.get_json()["token"])
        token_id = rotated.get_json()["access_token"]["id"]
    working = [
        t for t in tokens if call(client, "GET", "/api/api-keys/status", t).status_code == 200
    ]
    assert working == tokens[-2:]
    listed = client.get("/api/tokens").get_json()["tokens"]
    assert sorted(t["state"] for t in listed) == [
        "active",
        "replaced",
        "replaced",
        "replaced",
        "rotating",
    ]
    assert create(client).status_code == 409  # two working: at the limit
    (last, *_) = sorted(audit_rows(app, "token.rotate"), key=lambda row: -row.id)
    assert len(last.details["ended_grace_of"]) == 1


def test_rotation_through_the_api(app, alice):
    first = create(alice, scopes=["keys:read"], expires_in_days=30, allowed_ips=["192.0.2.0/24"])
    old = first.get_json()
    response = alice.post(f"/api/tokens/{old['access_token']['id']}/rotate", json={})
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    new, replaced = body["access_token"], body["replaced"]
    assert body["token"] != old["token"] and token_format.check(body["token"])
    for same in ("name", "scopes", "allowed_ips"):
        assert new[same] == old["access_token"][same]
    assert timedelta(days=29) < parse_time(new["expires_at"]) - utcnow() <= timedelta(days=30)
    assert replaced["state"] == "rotating" and replaced["replaced_by_id"] == new["id"]
    grace = parse_time(replaced["grace_until"]) - utcnow()
    assert timedelta(hours=23) < grace <= timedelta(hours=24)
    again = alice.post(f"/api/tokens/{replaced['id']}/rotate", json={})
    assert again.status_code == 409 and error_code(again) == "token_inactive"
    [rotated] = audit_rows(app, "token.rotate")
    assert rotated.details["token_id"] == replaced["id"]
    assert rotated.details["new_token_id"] == new["id"]


def test_an_expired_token_cannot_be_rotated_back_to_life(app, alice):
    body = create(alice).get_json()
    token_id = body["access_token"]["id"]
    update_token(app, token_id, expires_at=utcnow() - timedelta(seconds=1))
    response = alice.post(f"/api/tokens/{token_id}/rotate", json={})
    assert response.status_code == 409 and error_code(response) == "token_inactive"
    assert "expired" in response.get_json()["error"]["message"]
    assert "token" not in response.get_json()
    [listed] = alice.get("/api/tokens").get_json()["tokens"]
    assert (listed["id"], listed["state"], listed["replaced_by_id"]) == (token_id, "expired", None)
    assert audit_rows(app, "token.rotate") == []
    assert call(app.test_client(), "GET", "/api/api-keys/status", body["token"]).status_code == 401


@pytest.mark.parametrize(("grace", "status"), [(0, 201), (168, 201), (169, 422), (-1, 422)])
def test_the_grace_period_is_bounded(app, alice, grace, status):
    token_id = create(alice).get_json()["access_token"]["id"]
    response = alice.post(f"/api/tokens/{token_id}/rotate", json={"grace_hours": grace})
    assert response.status_code == status
    if grace == 0:
        assert response.get_json()["replaced"]["state"] == "replaced"


def test_revoking_through_the_api_is_immediate_and_idempotent(app, alice):
    body = create(alice).get_json()
    token, token_id = body["token"], body["access_token"]["id"]
    script = app.test_client()
    assert call(script, "GET", "/api/api-keys/status", token).status_code == 200
    response = alice.delete(f"/api/tokens/{token_id}", json={})
    assert response.status_code == 200
    assert response.get_json()["access_token"]["state"] == "revoked"
    assert call(script, "GET", "/api/api-keys/status", token).status_code == 401
    assert alice.delete(f"/api/tokens/{token_id}", json={}).status_code == 200
    assert len(audit_rows(app, "token.revoke")) == 1
    again = alice.post(f"/api/tokens/{token_id}/rotate", json={})
    assert again.status_code == 409


def test_another_users_tokens_are_not_found(app, alice, user_client):
    bob = user_client(BOB)
    token_id = create(alice).get_json()["access_token"]["id"]
    assert bob.get("/api/tokens").get_json()["tokens"] == []
    for response in (
        bob.post(f"/api/tokens/{token_id}/rotate", json={}),
        bob.delete(f"/api/tokens/{token_id}", json={}),
    ):
        assert response.status_code == 404 and error_code(response) == "token_not_found"
    row = token_row(app, token_id)
    assert row.revoked_at is None and row.grace_until is None


def test_managing_tokens_needs_a_session_and_its_csrf_token(app, alice):
    assert app.test_client().get("/api/tokens").status_code == 401
    refused = alice.post("/api/tokens", json={"name": "x"}, csrf=False)
    assert refused.status_code == 400 and error_code(refused) == "csrf_failed"
    assert alice.get("/api/tokens").get_json()["tokens"] == []


def test_resolve_returns_the_owners_key_to_a_token_with_the_scope(app, alice):
    key = store(app, ALICE, "groq")
    _, token = issue(app, scopes=["keys:resolve"])
    response = call(app.test_client(), "POST", "/api/keys/resolve/groq", token)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "provider": "groq",
        "source": "user",
        "api_key": key,
        "config": {},
    }
    [resolved] = audit_rows(app, "token.resolve")
    assert resolved.outcome == "ok" and resolved.provider == "groq"
    assert resolved.details["hint"] == token[:8] and key not in str(resolved.details)
    assert resolved.details["key_hint"].endswith(key[-4:])


def test_resolve_is_refused_without_the_scope_and_to_a_browser(app, alice):
    key = store(app, ALICE, "groq")
    _, token = issue(app, scopes=["keys:read", "keys:write", "keys:validate", "audit:read"])
    no_scope = call(app.test_client(), "POST", "/api/keys/resolve/groq", token)
    assert no_scope.status_code == 403 and error_code(no_scope) == "insufficient_scope"
    browser = alice.post("/api/keys/resolve/groq", json={})
    assert browser.status_code == 403 and error_code(browser) == "token_required"
    for response in (no_scope, browser):
        assert key not in response.get_data(as_text=True)
    [denied] = audit_rows(app, "token.resolve")
    assert denied.outcome == "denied" and denied.details["reason"] == "token_required"


def test_repeated_resolve_refusals_are_audited_once_a_run_and_each_logged(make_app, caplog):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1000/minute")
    browser = app.test_client()
    AuthActions(browser).register(ALICE)
    _, token = issue(app, scopes=["keys:resolve"])
    script = app.test_client()
    caplog.set_level(logging.INFO)
    for _ in range(5):
        assert browser.post("/api/keys/resolve/groq", json={}).status_code == 403
        assert call(script, "POST", "/api/keys/resolve/groq", token).status_code == 404
    # Another provider, and then a key handed out: each on the record.
    assert call(script, "POST", "/api/keys/resolve/mistral", token).status_code == 404
    store(app, ALICE, "groq")
    assert all(
        call(script, "POST", "/api/keys/resolve/groq", token).status_code == 200 for _ in range(3)
    )
    rows = [
        (r.outcome, r.provider, r.details.get("reason")) for r in audit_rows(app, "token.resolve")
    ]
    refusals = [row for row in rows if row[0] != "ok"]
    assert refusals == [
        ("denied", "groq", "token_required"),
        ("failed", "groq", "no_key"),
        ("failed", "mistral", "no_key"),
    ]
    assert [row[0] for row in rows].count("ok") == 3  # every key handed out
    logged = [r for r in caplog.records if getattr(r, "event", None) == "token.resolve"]
    assert len(logged) == 14


def test_every_resolve_is_audited_even_without_a_key(app, alice):
    _, token = issue(app, scopes=["keys:resolve"])
    client = app.test_client()
    response = call(client, "POST", "/api/keys/resolve/groq", token)
    assert response.status_code == 404 and error_code(response) == "no_key_available"
    unknown = call(client, "POST", "/api/keys/resolve/nope", token)
    assert unknown.status_code == 404 and error_code(unknown) == "unknown_provider"
    no_key, not_a_provider = audit_rows(app, "token.resolve")
    assert (no_key.outcome, no_key.provider, no_key.details["reason"]) == (
        "failed",
        "groq",
        "no_key",
    )
    assert (not_a_provider.outcome, not_a_provider.provider) == ("failed", None)
    assert not_a_provider.details["reason"] == "unknown_provider"
    assert not_a_provider.details["requested"] == "nope"
    assert {e.details["hint"] for e in (no_key, not_a_provider)} == {token[:8]}


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "malformed_json"),
        ({"json": {"provider": "groq"}}, 400, "invalid_body"),
        ({"data": "a=b", "content_type": FORM}, 415, "unsupported_media_type"),
        ({"json": {"padding": "x" * 70_000}}, 413, "payload_too_large"),
        ({"json": {}, "query_string": {"provider": "openai"}}, 400, "invalid_query"),
    ],
)
def test_a_resolve_refused_for_its_body_is_audited(app, alice, body, status, code):
    key = store(app, ALICE, "groq")
    _, token = issue(app, scopes=["keys:resolve"])
    response = call(app.test_client(), "POST", "/api/keys/resolve/groq", token, **body)
    assert response.status_code == status and error_code(response) == code
    assert key not in response.get_data(as_text=True)
    [event] = audit_rows(app, "token.resolve")
    assert (event.outcome, event.provider, event.details["reason"]) == ("failed", "groq", code)
    assert event.details["hint"] == token[:8]


def test_a_key_that_cannot_be_decrypted_is_audited_as_a_failed_resolve(app, alice, user_client):
    store(app, ALICE, "groq")
    user_client(BOB)
    store(app, BOB, "groq")
    with app.app_context():
        # Bob's ciphertext in Alice's row: sealed for another user, so it cannot be opened.
        rows = {r.user_id: r for r in db.session.scalars(db.select(UserAPIKey))}
        alice_id = find_user(ALICE).id
        [bob_id] = set(rows) - {alice_id}
        rows[alice_id].encrypted_key = rows[bob_id].encrypted_key
        db.session.commit()
    _, token = issue(app, scopes=["keys:resolve"])
    response = call(app.test_client(), "POST", "/api/keys/resolve/groq", token)
    assert response.status_code == 500 and error_code(response) == "key_unreadable"
    [event] = audit_rows(app, "token.resolve")
    assert (event.outcome, event.provider, event.details["reason"]) == (
        "failed",
        "groq",
        "key_unreadable",
    )


@pytest.mark.parametrize(("allowed", "status"), [(False, 404), (True, 200)])
def test_global_keys_are_resolved_only_if_the_admin_allows(make_app, allowed, status):
    app = make_app(TOKEN_RESOLVE_GLOBAL_KEYS=allowed)
    AuthActions(app.test_client()).register(ALICE)
    shared = fake_key("groq")
    with app.app_context():
        global_keys.save_global_key("groq", shared, {}, actor=None, validate=False)
    _, token = issue(app, scopes=["keys:resolve"])
    response = call(app.test_client(), "POST", "/api/keys/resolve/groq", token)
    assert response.status_code == status
    assert (shared in response.get_data(as_text=True)) is allowed
    if not allowed:
        assert error_code(response) == "no_own_key"
    [event] = audit_rows(app, "token.resolve")
    assert event.outcome == ("ok" if allowed else "denied")


def test_the_database_holds_no_token_in_plaintext(app, alice):
    tokens = [create(alice, scopes=["keys:read"]).get_json()["token"] for _ in range(2)]
    token_id = alice.get("/api/tokens").get_json()["tokens"][0]["id"]
    tokens.append(alice.post(f"/api/tokens/{token_id}/rotate", json={}).get_json()["token"])
    tokens.append(issue(app)[1])
    for token in tokens:
        call(app.test_client(), "GET", "/api/api-keys/status", token)
    call(app.test_client(), "GET", "/api/api-keys/status", tokens[0][:-1] + "0")
    with app.app_context():
        db.session.remove()
        dump = "\n".join(
            str(tuple(row))
            for table in db.metadata.sorted_tables
            for row in db.session.execute(text(f"SELECT * FROM {table.name}"))
        )
        hashes = set(db.session.scalars(text("SELECT token_hash FROM access_tokens")))
        url = db.engine.url
        db.engine.dispose()
    assert hashes == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
    for token in tokens:
        assert token not in dump and token[8:-6] not in dump and token[4:20] not in dump
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for token in tokens:
            assert token[8:-6].encode() not in raw


def test_a_grace_period_in_the_query_is_refused_not_ignored(alice):
    # The body takes grace_hours; in the query it would have been dropped and the default
    # grace given, leaving a leaked token working for a day.
    token_id = alice.post("/api/tokens", json={"name": "ci"}).get_json()["access_token"]["id"]
    response = alice.post(f"/api/tokens/{token_id}/rotate?grace_hours=0", json={})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_query"
    [listed] = alice.get("/api/tokens").get_json()["tokens"]
    assert listed["replaced_by_id"] is None and listed["state"] == "active"


class _PausedInsert:
    """Holds the first request that inserts an access token just before its INSERT, until
    ``release``; meanwhile another request runs in a thread of its own."""

    def __init__(self, app) -> None:
        with app.app_context():
            self.engine = db.engine
        self.reached = threading.Event()
        self.go = threading.Event()

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.go.set()
        event.remove(self.engine, "before_cursor_execute", self._hook)

    def _hook(self, conn, cursor, sql, *args) -> None:
        if (
            sql.lstrip().upper().startswith("INSERT INTO ACCESS_TOKENS")
            and not self.reached.is_set()
        ):
            self.reached.set()
            self.go.wait(10)


def _in_thread(results: dict, name: str, call) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.__setitem__(name, call()))
    thread.start()
    return thread


def test_two_tokens_created_at_once_keep_to_the_limit(make_app):
    app = make_app(TOKEN_MAX_PER_USER=1)
    first, second = app.test_client(), app.test_client()
    AuthActions(first).register(ALICE)
    AuthActions(second).login(ALICE)
    results: dict = {}
    with _PausedInsert(app) as paused:
        one = _in_thread(results, "first", lambda: create(first).status_code)
        assert paused.reached.wait(10)
        two = _in_thread(results, "second", lambda: create(second).status_code)
        two.join(0.5)  # the second waits for the first (or, unguarded, finishes first)
        paused.go.set()
        one.join(10)
        two.join(10)
    assert sorted(results.values()) == [201, 409]


def test_a_token_created_during_a_password_change_is_revoked_with_the_rest(make_app):
    app = make_app()
    owner, intruder = app.test_client(), app.test_client()
    AuthActions(owner).register(ALICE)
    AuthActions(intruder).login(ALICE)
    new_password = "another correct horse battery"
    change = {
        "current": PASSWORD,
        "password": new_password,
        "confirm": new_password,
        "revoke_tokens": "y",
    }
    results: dict = {}
    with _PausedInsert(app) as paused:
        minting = _in_thread(results, "create", lambda: create(intruder))
        assert paused.reached.wait(10)
        changing = _in_thread(
            results, "change", lambda: owner.post("/auth/password", data=change).status_code
        )
        changing.join(0.5)
        paused.go.set()
        minting.join(10)
        changing.join(10)
    assert results["change"] == 302
    minted = results["create"]
    if minted.status_code == 201:  # created first: then revoked by the change
        token = minted.get_json()["token"]
        assert call(app.test_client(), "GET", "/api/api-keys/status", token).status_code == 401
    else:
        assert minted.status_code == 401
