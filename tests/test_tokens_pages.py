"""The /tokens page: create (the token is shown once), list, rotate, revoke."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from tests.conftest import PASSWORD, AuthActions
from tests.token_helpers import (
    ALICE,
    BOB,
    audit_rows,
    browser_session,
    call,
    issue,
    token_row,
    update_token,
)
from webapp.auth.services import find_user
from webapp.db_types import utcnow
from webapp.tokens import format as token_format
from webapp.tokens import service

TOKEN = re.compile(r'<code id="new-token-value" class="token-value">(khp_[0-9A-Za-z]{38})</code>')


@pytest.fixture
def alice(app, user_client):
    return user_client(ALICE)


def html(response) -> str:
    return response.get_data(as_text=True)


def create(client, **data):
    form = {"name": "nightly report", "scopes": ["keys:read"], "expires_in": "90", **data}
    return client.post("/tokens/", data=form)


def test_the_nav_leads_to_the_tokens_page(alice):
    page = html(alice.get("/keys/"))
    assert 'href="/tokens/"' in page
    response = alice.get("/tokens/")
    assert response.status_code == 200 and "You have no access tokens yet." in html(response)
    assert response.headers["Cache-Control"] == "no-store"


def test_a_new_token_is_shown_once_with_a_copy_button(app, alice):
    response = create(alice, scopes=["keys:read", "keys:validate"], allowed_ips="192.0.2.0/24\n")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = html(response)
    token = TOKEN.search(page).group(1)
    assert token_format.check(token) == token
    assert 'data-copy-target="new-token-value"' in page
    assert '<script src="/static/js/copy.js"' in page
    assert "<script>" not in page and "onclick" not in page and "style=" not in page
    session = browser_session(app, alice)
    assert "_user_id" in session and token not in json.dumps(session)
    listing = html(alice.get("/tokens/"))
    assert "nightly report" in listing and token[:8] in listing and token not in listing
    assert "keys:validate" in listing and "Only from 192.0.2.0/24" in listing
    assert "Never used" in listing
    assert call(app.test_client(), "GET", "/api/api-keys/status", token).status_code == 403
    allowed = {"REMOTE_ADDR": "192.0.2.44"}
    used = call(app.test_client(), "GET", "/api/api-keys/status", token, environ_base=allowed)
    assert used.status_code == 200
    assert "from 192.0.2.44" in html(alice.get("/tokens/"))


def test_resolve_is_off_unless_ticked(app, alice):
    token = TOKEN.search(html(create(alice, scopes=["keys:read", "keys:resolve"]))).group(1)
    [row] = [r for r in audit_rows(app, "token.create")]
    assert row.details["scopes"] == ["keys:read"]  # keys:resolve is not among the checkboxes
    ticked = TOKEN.search(html(create(alice, allow_resolve="y"))).group(1)
    assert token != ticked
    assert "keys:resolve" in audit_rows(app, "token.create")[1].details["scopes"]
    page = html(alice.get("/tokens/"))
    assert "scope-sensitive" in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": ""}, "Give the token a name"),
        ({"scopes": []}, "Choose at least one scope."),
        ({"expires_in": "never"}, "Tokens must expire"),
        ({"expires_in": "9999"}, "between 1 and 365 days"),
        ({"expires_in": "9" * 5000}, "a whole number of days"),  # past what int() converts
        ({"allowed_ips": "10.1.2.3/16"}, "did you mean 10.1.0.0/16?"),
        ({"allowed_ips": "not-an-ip"}, "is not an IP address"),
    ],
)
def test_bad_input_is_shown_on_the_form(app, alice, data, message):
    response = create(alice, **data)
    assert response.status_code == 400
    page = html(response)
    assert message in page and TOKEN.search(page) is None
    assert audit_rows(app, "token.create") == []


def test_never_is_offered_only_when_allowed(make_app):
    from tests.conftest import AuthActions

    app = make_app(TOKEN_ALLOW_NO_EXPIRY=True)
    client = app.test_client()
    AuthActions(client).register(ALICE)
    assert '<option value="never">Never</option>' in html(client.get("/tokens/"))
    page = html(create(client, expires_in="never"))
    assert TOKEN.search(page) and "<dd>Never</dd>" in page


def test_the_default_lifetime_is_preselected(alice):
    assert '<option selected value="90">90 days</option>' in html(alice.get("/tokens/"))
    assert 'value="never"' not in html(alice.get("/tokens/"))


def test_rotating_shows_the_new_token_and_the_old_ones_grace(app, alice):
    token_id, old = issue(app)
    page = html(alice.get(f"/tokens/{token_id}/rotate"))
    assert "Keep the old token working for" in page and '<option selected value="24">' in page
    response = alice.post(f"/tokens/{token_id}/rotate", data={"grace_hours": "24"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    page = html(response)
    new = TOKEN.search(page).group(1)
    assert new != old and "keeps working until" in page and old[:8] in page
    assert new not in json.dumps(browser_session(app, alice))
    listing = html(alice.get("/tokens/"))
    assert "Rotated: still works during grace" in listing
    assert html(alice.get(f"/tokens/{token_id}/rotate")).count("already rotated") == 1
    again = alice.post(f"/tokens/{token_id}/rotate", data={"grace_hours": "24"})
    assert again.status_code == 409 and TOKEN.search(html(again)) is None


def test_rotating_a_successor_says_that_the_token_before_it_stops(app, alice):
    token_id, old = issue(app)
    alice.post(f"/tokens/{token_id}/rotate", data={"grace_hours": "24"})
    successor = token_row(app, token_id).replaced_by_id
    page = html(alice.get(f"/tokens/{successor}/rotate"))
    assert f'The token this one replaced (<code class="hint">{old[:8]}' in page
    assert "stops now" in page
    alice.post(f"/tokens/{successor}/rotate", data={"grace_hours": "24"})
    assert call(app.test_client(), "GET", "/api/api-keys/status", old).status_code == 401
    assert "Replaced" in html(alice.get("/tokens/"))


@pytest.mark.parametrize(("state", "message"), [("expired", "has expired"), ("revoked", "revoked")])
def test_only_an_active_token_is_offered_rotation(app, alice, state, message):
    token_id, _ = issue(app, name="old laptop")
    if state == "expired":
        update_token(app, token_id, expires_at=utcnow() - timedelta(seconds=1))
    else:
        alice.post(f"/tokens/{token_id}/revoke")
    listing = html(alice.get("/tokens/"))
    assert "old laptop" in listing
    assert f"/tokens/{token_id}/rotate" not in listing
    page = html(alice.get(f"/tokens/{token_id}/rotate"))
    assert message in page and "create a new token instead" in page
    assert "Rotate token</button>" not in page
    refused = alice.post(f"/tokens/{token_id}/rotate", data={"grace_hours": "24"})
    assert refused.status_code == 409
    assert message in html(refused) and TOKEN.search(html(refused)) is None
    row = token_row(app, token_id)
    assert row.grace_until is None and row.replaced_by_id is None
    assert audit_rows(app, "token.rotate") == []


def test_rotating_without_grace(app, alice):
    token_id, old = issue(app)
    page = html(alice.post(f"/tokens/{token_id}/rotate", data={"grace_hours": "0"}))
    assert "no longer works" in page
    assert call(app.test_client(), "GET", "/api/api-keys/status", old).status_code == 401


@pytest.mark.parametrize("hours", ["10000", "9" * 5000])
def test_a_made_up_grace_period_is_refused(app, alice, hours):
    token_id, _ = issue(app)
    response = alice.post(f"/tokens/{token_id}/rotate", data={"grace_hours": hours})
    assert response.status_code == 400 and "grace period" in html(response)
    assert token_row(app, token_id).grace_until is None


def test_revoking_from_the_page(app, alice):
    token_id, token = issue(app, name="old laptop")
    assert "It stops working at once" in html(alice.get(f"/tokens/{token_id}/revoke"))
    response = alice.post(f"/tokens/{token_id}/revoke", follow_redirects=True)
    assert "was revoked" in html(response)
    assert token_row(app, token_id).revoked_at is not None
    assert call(app.test_client(), "GET", "/api/api-keys/status", token).status_code == 401
    assert "Revoked" in html(alice.get("/tokens/"))
    # Its page, open in another tab, says so and offers nothing; posting it changes nothing.
    again = html(alice.get(f"/tokens/{token_id}/revoke"))
    assert "This token was revoked" in again and "Revoke token</button>" not in again
    posted = html(alice.post(f"/tokens/{token_id}/revoke", follow_redirects=True))
    assert "was revoked." not in posted and "nothing left to do" in posted
    assert len(audit_rows(app, "token.revoke")) == 1


def test_pages_refuse_without_csrf_and_for_other_users(app, alice, user_client):
    token_id, _ = issue(app)
    assert alice.post(f"/tokens/{token_id}/revoke", csrf=False).status_code == 400
    assert create(alice, csrf_token="forged").status_code == 400
    bob = user_client(BOB)
    for path in (f"/tokens/{token_id}/rotate", f"/tokens/{token_id}/revoke"):
        assert bob.get(path).status_code == 404
        assert bob.post(path, data={"grace_hours": "0"}).status_code == 404
    row = token_row(app, token_id)
    assert row.revoked_at is None and row.grace_until is None
    assert app.test_client().get("/tokens/").status_code == 302  # to the login page


def change_password(client, **extra):
    new = PASSWORD + "!"
    form = {"current": PASSWORD, "password": new, "confirm": new, **extra}
    return client.post("/auth/password", data=form, follow_redirects=True)


def test_a_new_password_revokes_the_working_tokens_unless_unticked(app, alice):
    rotated_id, rotated = issue(app, name="rotated")
    with app.app_context():
        successor = service.rotate_token(find_user(ALICE), rotated_id, grace_hours=24).token
    active_id, active = issue(app, name="active")
    expired_id, _ = issue(app, name="expired")
    update_token(app, expired_id, expires_at=utcnow() - timedelta(seconds=1))
    page = html(alice.get("/auth/password"))
    assert "You have 3 working" in page and "access tokens</a>" in page
    assert re.search(r'<input [^>]*checked id="revoke_tokens" name="revoke_tokens"', page)
    assert "stop working at once" in page
    wrong = alice.post("/auth/password", data={"current": "wrong", "password": "x" * 12})
    assert wrong.status_code == 400
    response = change_password(alice, revoke_tokens="y")
    assert "3 access tokens were revoked." in html(response)
    script = app.test_client()
    for token in (rotated, successor, active):
        assert call(script, "GET", "/api/api-keys/status", token).status_code == 401
    revoked = audit_rows(app, "token.revoke")
    assert sorted(r.details["token_id"] for r in revoked) == sorted(
        [rotated_id, active_id, token_row(app, rotated_id).replaced_by_id]
    )
    assert {r.details["reason"] for r in revoked} == {"password_change"}
    [changed] = [e for e in audit_rows(app, "auth.password_change") if e.outcome == "ok"]
    assert changed.details == {"tokens_revoked": 3}
    assert token_row(app, expired_id).revoked_at is None  # it stopped working by itself
    assert "You have no working access tokens now" in html(alice.get("/auth/password"))


def test_an_unticked_box_keeps_the_tokens(app, alice):
    _, token = issue(app)
    response = change_password(alice)  # a browser sends no field for an unticked box
    assert "Your password was changed." in html(response) and "revoked" not in html(response)
    assert call(app.test_client(), "GET", "/api/api-keys/status", token).status_code == 200
    assert audit_rows(app, "token.revoke") == []
    [changed] = audit_rows(app, "auth.password_change")
    assert changed.details == {"tokens_revoked": 0}


def test_a_token_created_after_the_password_page_was_shown_is_revoked_with_the_change(app):
    # The owner has no tokens when the page is drawn; whoever holds the stolen password
    # creates one before the owner sends it. The box is there, ticked, all the same.
    owner, intruder = app.test_client(), app.test_client()
    AuthActions(owner).register(ALICE)
    AuthActions(intruder).login(ALICE)
    page = html(owner.get("/auth/password"))
    assert "You have no working access tokens now" in page
    assert re.search(r'<input [^>]*checked id="revoke_tokens" name="revoke_tokens"', page)
    minted = intruder.post("/api/tokens", json={"name": "backdoor", "scopes": ["keys:read"]})
    token = minted.get_json()["token"]
    response = change_password(owner, revoke_tokens="y")  # as the page sends it
    assert "1 access token was revoked." in html(response)
    assert call(app.test_client(), "GET", "/api/api-keys/status", token).status_code == 401


def test_a_browser_kept_signed_in_confirms_its_password_before_creating_tokens(app):
    # A stolen remember-me cookie alone must not become a token that reads keys.
    browser = app.test_client()
    AuthActions(browser).register(ALICE)
    token_id, _ = issue(app)
    browser.post("/auth/logout")
    AuthActions(browser).login(ALICE, remember="y")
    browser.delete_cookie("session")  # the browser restarted: "Keep me signed in" brings it back
    page = html(browser.get("/tokens/"))
    assert "Confirm your password</a> to create a token" in page and "Create token" not in page
    asked = browser.post("/tokens/", data={"name": "x", "scopes": "keys:read", "expires_in": "90"})
    assert asked.status_code == 302
    assert asked.headers["Location"] == "/auth/confirm?next=/tokens/"
    rotate = html(browser.get(f"/tokens/{token_id}/rotate"))
    assert "Confirm your password</a> to rotate" in rotate and "Rotate token</button>" not in rotate
    assert browser.post(f"/tokens/{token_id}/rotate", data={"grace_hours": "0"}).status_code == 302
    refused = browser.post("/api/tokens", json={"name": "x"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "password_confirmation_required"
    assert len(audit_rows(app, "token.create")) == 1 and len(audit_rows(app, "token.rotate")) == 0
    # The password, once more: wrong, then right; and the page does what it was asked.
    wrong = browser.post("/auth/confirm?next=/tokens/", data={"password": "wrong " + PASSWORD})
    assert wrong.status_code == 400 and "That is not your password." in html(wrong)
    right = browser.post("/auth/confirm?next=/tokens/", data={"password": PASSWORD})
    assert right.status_code == 302 and right.headers["Location"] == "/tokens/"
    assert "Create token" in html(browser.get("/tokens/"))
    assert browser.post("/api/tokens", json={"name": "x"}).status_code == 201
    assert [e.outcome for e in audit_rows(app, "auth.confirm")] == ["denied", "ok"]


def test_a_password_given_long_ago_is_asked_for_again_before_creating_tokens(make_app):
    # A session cookie taken from a browser left signed in: fresh, but its password is old.
    app = make_app(PASSWORD_CONFIRM_WINDOW=3600)
    browser = app.test_client()
    AuthActions(browser).register(ALICE)
    assert browser.post("/api/tokens", json={"name": "now"}).status_code == 201
    with browser.session_transaction() as session:
        session["password_at"] -= 3601
    assert "Confirm your password</a> to create a token" in html(browser.get("/tokens/"))
    refused = browser.post("/api/tokens", json={"name": "later"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "password_confirmation_required"
    assert browser.get("/auth/confirm").status_code == 200  # not skipped: asked again
    assert browser.post("/auth/confirm", data={"password": PASSWORD}).status_code == 302
    assert browser.post("/api/tokens", json={"name": "later"}).status_code == 201
