"""Bearer authentication: what a token lets through, what it refuses, and what it leaves behind."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
from sqlalchemy import event

from tests.conftest import AuthActions
from tests.helpers import rows_of, store
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
from webapp.tokens import format as token_format
from webapp.tokens import service

STATUS = "/api/api-keys/status"


@pytest.fixture
def alice(app, user_client):
    return user_client(ALICE)


def groq_status(response) -> dict:
    assert response.status_code == 200, response.get_data(as_text=True)
    return next(p for p in response.get_json()["providers"] if p["provider"] == "groq")


class Statements:
    """Every SQL statement the app sends while the listener is attached."""

    def __init__(self, app) -> None:
        self.app = app
        self.seen: list[str] = []

    def _record(self, conn, cursor, statement, *args) -> None:
        self.seen.append(statement.lower())

    def __enter__(self) -> Statements:
        with self.app.app_context():
            self.engine = db.engine
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def touching(self, table: str) -> list[str]:
        return [s for s in self.seen if table in s]


def test_a_token_alone_authenticates_an_api_request(app, alice):
    store(app, ALICE, "groq")
    token_id, token = issue(app)
    stranger = app.test_client()  # no cookie, no CSRF token: a script
    response = call(stranger, "GET", STATUS, token, environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert groq_status(response)["has_key"] is True
    assert "Set-Cookie" not in response.headers  # no session is started for a script
    row = token_row(app, token_id)
    assert (row.use_count, row.last_used_ip) == (1, "192.0.2.10")
    assert utcnow() - row.last_used_at < timedelta(minutes=1)
    call(stranger, "GET", STATUS, token)
    assert token_row(app, token_id).use_count == 2


def test_without_a_token_or_session_the_api_answers_401(app, alice):
    response = app.test_client().get(STATUS)
    assert response.status_code == 401


def test_one_changed_character_is_refused_before_any_database_lookup(app, alice):
    _, token = issue(app)
    position = 20
    changed = token[:position] + ("A" if token[position] != "A" else "B") + token[position + 1 :]
    with pytest.raises(token_format.TokenFormatError):
        token_format.check(changed)
    client = app.test_client()
    with Statements(app) as good:
        assert call(client, "GET", STATUS, token).status_code == 200
    assert good.touching("access_tokens")  # the listener does see token lookups
    with Statements(app) as bad:
        response = call(client, "GET", STATUS, changed)
    assert response.status_code == 401 and error_code(response) == "invalid_token"
    # The only tables the request touched are the audit trail's, for its audit row.
    with app.app_context():
        others = [t for t in db.metadata.tables if not t.startswith("audit_")]
    assert "access_tokens" in others and "users" in others
    assert bad.seen and {t: bad.touching(t) for t in others} == {t: [] for t in others}
    [failure] = audit_rows(app, "token.auth_failed")
    assert failure.details == {"reason": "bad_checksum", "hint": changed[:8]}


def _expired(app, token_id, token):
    update_token(app, token_id, expires_at=utcnow() - timedelta(seconds=1))


def _revoked(app, token_id, token):
    with app.app_context():
        service.revoke_token(find_user(ALICE), token_id)


def _out_of_grace(app, token_id, token):
    with app.app_context():
        service.rotate_token(find_user(ALICE), token_id, grace_hours=1)
    update_token(app, token_id, grace_until=utcnow() - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [(_expired, "expired"), (_revoked, "revoked"), (_out_of_grace, "replaced")],
)
def test_expired_revoked_and_out_of_grace_tokens_are_refused(app, alice, caplog, spoil, reason):
    store(app, ALICE, "groq")
    token_id, token = issue(app)
    client = app.test_client()
    assert call(client, "GET", STATUS, token).status_code == 200
    spoil(app, token_id, token)
    caplog.set_level(logging.INFO)
    response = call(client, "GET", STATUS, token)
    assert response.status_code == 401
    assert error_code(response) == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    [failure] = audit_rows(app, "token.auth_failed")
    assert failure.details["reason"] == reason and failure.details["token_id"] == token_id
    assert failure.subject_user_id == token_row(app, token_id).user_id
    assert failure.outcome == "denied"
    logged = [r for r in caplog.records if getattr(r, "event", None) == "token.auth_failed"]
    assert [r.reason for r in logged] == [reason]
    assert token not in caplog.text
    assert token_row(app, token_id).use_count == 1  # refusals are not uses
    # The caller is not told which check failed: the answer is that of a made-up token.
    unknown = call(client, "GET", STATUS, token_format.generate())
    assert response.get_data() == unknown.get_data()
    assert response.headers["WWW-Authenticate"] == unknown.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "khp_short",
        "ghp_" + "a" * 38,
        "not a token at all",
        token_format.generate(),  # well formed, never issued
    ],
)
def test_malformed_and_unknown_tokens_get_the_same_401(app, alice, credential):
    response = call(app.test_client(), "GET", STATUS, credential)
    assert response.status_code == 401
    assert response.get_json()["error"]["message"].startswith("The access token is")
    [failure] = audit_rows(app, "token.auth_failed")
    assert failure.details["reason"] in ("malformed", "unknown")
    assert credential[8:] == "" or credential[8:] not in str(failure.details)


def test_wrong_ip_is_refused_with_403(app, alice, caplog):
    store(app, ALICE, "groq")
    token_id, token = issue(app, ips=["198.51.100.0/24", "203.0.113.9"])
    client = app.test_client()
    inside = call(client, "GET", STATUS, token, environ_base={"REMOTE_ADDR": "198.51.100.77"})
    assert inside.status_code == 200
    exact = call(client, "GET", STATUS, token, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert exact.status_code == 200
    caplog.set_level(logging.INFO)
    outside = call(client, "GET", STATUS, token, environ_base={"REMOTE_ADDR": "203.0.113.10"})
    assert outside.status_code == 403 and error_code(outside) == "ip_not_allowed"
    [failure] = audit_rows(app, "token.auth_failed")
    assert failure.details["reason"] == "ip_not_allowed" and failure.ip == "203.0.113.10"
    assert token_row(app, token_id).last_used_ip == "203.0.113.9"


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [(_expired, "expired"), (_revoked, "revoked"), (_out_of_grace, "replaced")],
)
def test_a_token_that_no_longer_works_is_a_401_from_any_address(app, alice, spoil, reason):
    token_id, token = issue(app, ips=["198.51.100.0/24"])
    spoil(app, token_id, token)
    client = app.test_client()
    elsewhere = {"REMOTE_ADDR": "203.0.113.10"}
    for address in ({"REMOTE_ADDR": "198.51.100.7"}, elsewhere):
        response = call(client, "GET", STATUS, token, environ_base=address)
        assert response.status_code == 401 and error_code(response) == "invalid_token"
    # From outside the allow-list the answer does not even say that the token exists.
    unknown = call(client, "GET", STATUS, token_format.generate(), environ_base=elsewhere)
    assert response.get_data() == unknown.get_data()
    failures = audit_rows(app, "token.auth_failed")
    assert [f.details["reason"] for f in failures] == [reason, reason, "unknown"]


def test_the_allow_list_still_applies_during_a_rotations_grace(app, alice):
    token_id, token = issue(app, ips=["198.51.100.0/24"])
    with app.app_context():
        service.rotate_token(find_user(ALICE), token_id, grace_hours=24)
    client = app.test_client()
    inside = call(client, "GET", STATUS, token, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert inside.status_code == 200
    outside = call(client, "GET", STATUS, token, environ_base={"REMOTE_ADDR": "203.0.113.10"})
    assert outside.status_code == 403 and error_code(outside) == "ip_not_allowed"


def test_an_ipv6_client_matches_an_ipv6_range(app, alice):
    _, token = issue(app, ips=["2001:db8:1234::/48"])
    client = app.test_client()

    def status_from(address: str) -> int:
        return call(client, "GET", STATUS, token, environ_base={"REMOTE_ADDR": address}).status_code

    assert status_from("2001:db8:1234:5::9") == 200
    assert status_from("2001:db8:1234:ffff:ffff:ffff:ffff:ffff") == 200
    assert status_from("2001:db8:1235::1") == 403
    assert status_from("192.0.2.1") == 403


def test_an_ipv4_client_on_a_dual_stack_socket_matches_its_ipv4_range(app, alice):
    _, token = issue(app, ips=["192.0.2.0/24"])
    response = call(
        app.test_client(), "GET", STATUS, token, environ_base={"REMOTE_ADDR": "::ffff:192.0.2.5"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(("proxies", "expected"), [(1, 200), (0, 403)])
def test_the_allow_list_sees_the_client_address_resolved_under_trusted_proxies(
    make_app, proxies, expected
):
    app = make_app(TRUSTED_PROXIES=proxies)

    assert AuthActions(app.test_client()).register(ALICE).status_code == 302
    token_id, token = issue(app, ips=["203.0.113.0/24"])
    response = call(
        app.test_client(),
        "GET",
        STATUS,
        token,
        headers={"X-Forwarded-For": "203.0.113.5"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert response.status_code == expected
    if expected == 200:
        assert token_row(app, token_id).last_used_ip == "203.0.113.5"
    else:
        assert audit_rows(app, "token.auth_failed")[0].ip == "10.0.0.1"


def test_a_token_of_one_user_never_touches_another_users_keys(app, alice, user_client):
    bob = user_client(BOB)
    bob_key = store(app, BOB, "groq")
    scopes = ["keys:read", "keys:write", "keys:validate", "keys:resolve"]
    _, token = issue(app, ALICE, scopes)
    # Even sent from Bob's signed-in browser, the token speaks for Alice alone.
    for client in (app.test_client(), bob):
        assert groq_status(call(client, "GET", STATUS, token))["has_key"] is False
        deleted = call(client, "DELETE", "/api/api-keys/groq", token)
        assert deleted.status_code == 404 and error_code(deleted) == "key_not_found"
        resolved = call(client, "POST", "/api/keys/resolve/groq", token)
        assert resolved.status_code == 404 and bob_key not in resolved.get_data(as_text=True)
        validated = call(client, "POST", "/api/api-keys/validate/groq", token, json={})
        assert validated.status_code == 404
        assert call(client, "DELETE", "/api/api-keys/", token).get_json() == {"deleted": 0}
    assert [r.provider for r in rows_of(app, BOB)] == ["groq"]
    assert groq_status(bob.get(STATUS))["has_key"] is True  # Bob's own session is intact


def test_a_bad_token_is_refused_even_with_a_valid_session_cookie(app, alice):
    store(app, ALICE, "groq")
    assert groq_status(alice.get(STATUS))["has_key"] is True
    response = call(alice, "GET", STATUS, token_format.generate())
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers
    assert alice.get(STATUS).status_code == 200  # the cookie still works on its own


def test_bearer_requests_skip_csrf_and_nothing_else_does(app, alice):
    store(app, ALICE, "groq")
    _, token = issue(app, ALICE, ["keys:write"])
    response = call(app.test_client(), "DELETE", "/api/api-keys/groq", token)
    assert response.status_code == 200 and rows_of(app, ALICE) == []
    store(app, ALICE, "groq")
    # The same header on a page, or a cookie-authenticated API call, still needs the CSRF token.
    page = call(alice, "POST", "/keys/groq/delete", token)
    assert page.status_code == 400
    api = alice.delete("/api/api-keys/groq", csrf=False)
    assert api.status_code == 400 and error_code(api) == "csrf_failed"
    api = alice.open(
        "/api/api-keys/groq", method="DELETE", csrf=False, headers={"Authorization": "Basic eDp5"}
    )
    assert api.status_code == 400 and error_code(api) == "csrf_failed"
    assert [r.provider for r in rows_of(app, ALICE)] == ["groq"]


def test_rotation_both_tokens_work_inside_grace_only_the_new_one_after(app, alice):
    token_id, old = issue(app)
    with app.app_context():
        issued = service.rotate_token(find_user(ALICE), token_id, grace_hours=24)
        new_id, new = issued.row.id, issued.token
    client = app.test_client()
    assert call(client, "GET", STATUS, old).status_code == 200
    assert call(client, "GET", STATUS, new).status_code == 200
    grace_until = token_row(app, token_id).grace_until
    assert timedelta(hours=23) < grace_until - utcnow() <= timedelta(hours=24)
    update_token(app, token_id, grace_until=utcnow() - timedelta(seconds=1))
    assert call(client, "GET", STATUS, old).status_code == 401
    assert call(client, "GET", STATUS, new).status_code == 200
    assert token_row(app, token_id).replaced_by_id == new_id


def test_rotation_with_no_grace_stops_the_old_token_at_once(app, alice):
    token_id, old = issue(app)
    with app.app_context():
        new = service.rotate_token(find_user(ALICE), token_id, grace_hours=0).token
    client = app.test_client()
    assert call(client, "GET", STATUS, old).status_code == 401
    assert call(client, "GET", STATUS, new).status_code == 200


def test_revocation_ends_a_grace_period_at_once(app, alice):
    token_id, old = issue(app)
    with app.app_context():
        service.rotate_token(find_user(ALICE), token_id, grace_hours=24)
        service.revoke_token(find_user(ALICE), token_id)
    assert call(app.test_client(), "GET", STATUS, old).status_code == 401


def test_requests_are_limited_per_token(make_app, caplog):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_TOKEN="2/minute")
    AuthActions(app.test_client()).register(ALICE)
    _, first = issue(app)
    _, second = issue(app)
    client = app.test_client()
    assert [call(client, "GET", STATUS, first).status_code for _ in range(2)] == [200, 200]
    limited = call(client, "GET", STATUS, first)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert call(client, "GET", STATUS, first).status_code == 429
    assert call(client, "GET", STATUS, second).status_code == 200
    # Refused as by any other limit: a log line each, one audit row for the run.
    (hit,) = audit_rows(app, "ratelimit.hit")
    assert hit.details["kind"] == "token" and hit.details["limit"] == "2/minute"
    with app.app_context():
        assert hit.actor_user_id == find_user(ALICE).id
    logged = [r for r in caplog.records if getattr(r, "event", None) == "ratelimit.hit"]
    assert len(logged) == 2 and "token limit 2/minute" in logged[0].reason


def test_failed_token_attempts_are_limited_per_address(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_TOKEN_FAILURES="3/minute")
    client = app.test_client()
    codes = [call(client, "GET", STATUS, token_format.generate()).status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    # Once limited, refusals cost no database writes but one row for the run.
    assert len(audit_rows(app, "token.auth_failed")) == 3
    (hit,) = audit_rows(app, "ratelimit.hit")
    assert hit.details["kind"] == "token-failure" and hit.actor_user_id is None


def test_a_refused_token_is_blamed_on_nobody_whatever_cookies_come_with_it(make_app):
    # A bearer request's cookies are never read: a browser's remember-me cookie sent along
    # with a guessed token must not put the guesses in that user's name.
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_TOKEN_FAILURES="1/minute")
    client = app.test_client()
    AuthActions(client).register(ALICE)
    AuthActions(client).logout()
    signed_in = AuthActions(client).login(ALICE, remember="y")
    assert "remember_token=" in " ".join(signed_in.headers.getlist("Set-Cookie"))
    codes = [call(client, "GET", STATUS, token_format.generate()).status_code for _ in range(2)]
    assert codes == [401, 429]
    (hit,) = audit_rows(app, "ratelimit.hit")
    assert hit.actor_user_id is None and hit.subject_user_id is None
    other = call(client, "GET", STATUS, "x", environ_base={"REMOTE_ADDR": "192.0.2.99"})
    assert other.status_code == 401


def test_failures_from_an_address_do_not_lock_out_valid_tokens_from_it(make_app):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_TOKEN_FAILURES="3/minute")
    AuthActions(app.test_client()).register(ALICE)
    _, valid = issue(app)
    revoked_id, revoked = issue(app)
    with app.app_context():
        service.revoke_token(find_user(ALICE), revoked_id)
    client = app.test_client()
    shared = {"REMOTE_ADDR": "198.51.100.7"}  # one NAT, CI runner or proxy for everyone

    def status_of(token: str):
        return call(client, "GET", STATUS, token, environ_base=shared)

    assert [status_of(token_format.generate()).status_code for _ in range(4)] == [
        401,
        401,
        401,
        429,
    ]
    # The budget is spent, yet a working token from the same address gets in, every time.
    assert [status_of(valid).status_code for _ in range(3)] == [200, 200, 200]
    # Failures stay refused with 429: a made-up token, and a real one that no longer works.
    for token in (token_format.generate(), revoked):
        refused = status_of(token)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert error_code(refused) == "rate_limited"
    assert len(audit_rows(app, "token.auth_failed")) == 3


def test_token_requests_are_served_and_counted_while_the_shared_store_is_down(make_app, caplog):
    # Redis unreachable: each worker counts on its own (README, "what each secret protects"),
    # for tokens as for every other limit; no request fails for it.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    first = make_app()
    AuthActions(first.test_client()).register(ALICE)
    _, token = issue(first)
    # A worker whose first requests carry tokens: no other limit has found the store down yet.
    app = make_app(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0",
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.2},
        RATELIMIT_TOKEN="2/minute",
        RATELIMIT_TOKEN_FAILURES="2/minute",
    )
    client = app.test_client()
    served = [call(client, "GET", STATUS, token).status_code for _ in range(3)]
    assert served == [200, 200, 429]
    guessed = [call(client, "GET", STATUS, token_format.generate()).status_code for _ in range(3)]
    assert guessed == [401, 401, 429]
    assert "counting here alone" in caplog.text


def test_a_change_made_with_a_token_names_the_token_in_the_audit_trail(app, alice):
    # A key deleted by a (perhaps leaked) token: its owner can tell which token to revoke.
    store(app, ALICE, "groq")
    store(app, ALICE, "openai")
    token_id, token = issue(app, ALICE, ["keys:write"])
    assert call(app.test_client(), "DELETE", "/api/api-keys/groq", token).status_code == 200
    [deleted] = audit_rows(app, "key.delete")
    hint = token_row(app, token_id).token_hint
    assert (deleted.details["token_id"], deleted.details["token_hint"]) == (token_id, hint)
    assert token not in str(deleted.details)
    # The same change from the browser names no token.
    assert alice.delete("/api/api-keys/openai", json={}).status_code == 200
    from_browser = audit_rows(app, "key.delete")[-1]
    assert "token_id" not in from_browser.details
