"""The security baseline as a client sees it: CSRF, headers, cookies, redirects, errors."""

from __future__ import annotations

import statistics
import threading
import time
from datetime import timedelta

import pytest

from tests.conftest import PASSWORD, AuthActions
from tests.helpers import rows_of, store
from webapp.audit.models import AuditEvent
from webapp.auth.models import LoginSession, User
from webapp.db_types import utcnow
from webapp.extensions import db


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/auth/register", {"email": "x@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        ("/auth/login", {"email": "alice@example.com", "password": PASSWORD}),
        ("/auth/logout", {}),
        ("/auth/password", {"current": PASSWORD, "password": PASSWORD, "confirm": PASSWORD}),
        ("/keys/openai", {"api_key": "sk-proj-" + "x" * 60}),
        ("/keys/openai/delete", {}),
    ],
)
def test_post_without_csrf_token_is_refused(client, auth, app, path, data):
    auth.register()
    store(app, "alice@example.com", "openai")
    before = [(r.provider, r.encrypted_key) for r in rows_of(app, "alice@example.com")]
    response = client.post(path, data=data, csrf=False)
    assert response.status_code == 400
    assert "did not come from this site" in text(response)
    assert [(r.provider, r.encrypted_key) for r in rows_of(app, "alice@example.com")] == before
    with app.app_context():
        users = db.select(db.func.count()).select_from(User).filter_by(is_admin=False)
        assert db.session.scalar(users) == 1
    # Still logged in: the refused logout did nothing.
    assert client.get("/keys/").status_code == 200


def test_post_with_a_forged_token_is_refused(client, auth):
    auth.register()
    response = client.post("/keys/openai/delete", data={"csrf_token": "forged"})
    assert response.status_code == 400


def test_security_headers_on_every_response(client, auth):
    for path in ("/auth/login", "/nope", "/static/css/keyhold.css"):
        with client.get(path) as response:
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "same-origin"
            assert response.headers["X-Frame-Options"] == "DENY"


def test_no_inline_script_in_pages(client, auth):
    auth.register()
    for path in ("/auth/login", "/keys/", "/keys/openai", "/keys/azure_openai"):
        html = text(client.get(path))
        assert "<script>" not in html and "onclick=" not in html and "style=" not in html


def test_key_pages_are_not_cached(client, auth, app):
    auth.register()
    store(app, "alice@example.com", "openai")
    for path in ("/keys/", "/keys/openai", "/keys/openai/delete"):
        assert client.get(path).headers["Cache-Control"] == "no-store"


def test_session_cookie_flags(client, make_app):
    response = client.get("/auth/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure_app = make_app(SESSION_COOKIE_SECURE=True)
    cookie = secure_app.test_client().get("/auth/login").headers["Set-Cookie"]
    assert "Secure" in cookie


def test_session_is_renewed_at_login(client, auth, app):
    auth.register()
    auth.logout()
    client.get("/auth/login")
    serializer = app.session_interface.get_signing_serializer(app)
    before = serializer.loads(client.get_cookie("session").value)
    auth.login()
    after = serializer.loads(client.get_cookie("session").value)
    assert before.get("csrf_token") and before.get("csrf_token") != after.get("csrf_token")
    assert "_user_id" in after


def test_password_change_signs_out_other_sessions(app, auth, client):
    auth.register()
    other = app.test_client()
    AuthActions(other).login()
    assert other.get("/keys/").status_code == 200
    response = client.post(
        "/auth/password",
        data={"current": PASSWORD, "password": PASSWORD + "!", "confirm": PASSWORD + "!"},
    )
    assert response.status_code == 302
    assert client.get("/keys/").status_code == 200  # this browser stays in
    assert other.get("/keys/").status_code == 302  # the other is signed out


def _overtaken_sign_in(monkeypatch, app, client, overtake) -> object:
    """Sign ``client`` in with the right password while ``overtake()`` runs between the
    password check and the opening of its session, as a request of another browser would."""
    import webapp.web

    real = webapp.web.open_session

    def open_session_later(user, **kwargs):
        monkeypatch.setattr(webapp.web, "open_session", real)  # only this sign-in waits
        # Another thread, as another request is: this one's context and database session
        # are not to be shared.
        failed: list[BaseException] = []

        def run() -> None:
            try:
                overtake()
            except BaseException as exc:  # handed to the test below
                failed.append(exc)

        other = threading.Thread(target=run)
        other.start()
        other.join()
        if failed:
            raise failed[0]
        return real(user, **kwargs)

    monkeypatch.setattr(webapp.web, "open_session", open_session_later)
    return AuthActions(client).login()


def test_a_sign_in_overtaken_by_a_password_change_gets_no_session(app, auth, client, monkeypatch):
    auth.register()  # the owner's browser
    thief = app.test_client()

    def change_password():
        new = PASSWORD + "!"
        data = {"current": PASSWORD, "password": new, "confirm": new}
        assert client.post("/auth/password", data=data).status_code == 302

    response = _overtaken_sign_in(monkeypatch, app, thief, change_password)
    assert response.status_code == 400
    assert "Email or password is incorrect." in text(response)
    assert thief.get("/keys/").status_code == 302  # not signed in
    assert client.get("/keys/").status_code == 200  # the owner's own browser stays in
    with app.app_context():
        query = db.select(AuditEvent.details).filter_by(action="auth.login", outcome="denied")
        assert [d["reason"] for d in db.session.scalars(query)] == ["password_changed"]


def test_a_sign_in_overtaken_by_the_accounts_deletion_is_refused_cleanly(
    app, auth, client, runner, monkeypatch
):
    auth.register()
    auth.logout()

    def purge():
        result = runner.invoke(args=["keys", "purge-user", "alice@example.com", "--yes"])
        assert result.exit_code == 0, result.output

    response = _overtaken_sign_in(monkeypatch, app, client, purge)
    assert response.status_code == 400
    assert "Email or password is incorrect." in text(response)
    assert client.get("/keys/").status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(LoginSession.id))) == 0


def _copy_cookie(source, target, name: str) -> None:
    cookie = source.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    target.set_cookie(name, cookie.value)


@pytest.mark.parametrize("cookie", ["session", "remember_token"])
def test_a_cookie_copied_before_logout_no_longer_works(app, auth, client, cookie):
    auth.register()
    auth.logout()
    auth.login(remember="y")
    copy = app.test_client()
    _copy_cookie(client, copy, cookie)
    assert copy.get("/keys/").status_code == 200  # the copy works while the session lasts
    copy.delete_cookie("session")  # the remember cookie alone (or the session cookie alone)
    _copy_cookie(client, copy, cookie)

    assert auth.logout().status_code == 302
    response = copy.get("/keys/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_logging_out_ends_only_that_browsers_session(app, auth, client):
    auth.register()
    other = app.test_client()
    AuthActions(other).login()
    assert auth.logout().status_code == 302
    assert client.get("/keys/").status_code == 302
    assert other.get("/keys/").status_code == 200  # the other browser stays signed in


def test_a_session_ends_after_the_remember_me_lifetime(make_app):
    app = make_app(REMEMBER_COOKIE_DURATION=timedelta(days=30))
    client = app.test_client()
    AuthActions(client).register()
    assert client.get("/keys/").status_code == 200
    with app.app_context():
        db.session.execute(db.update(LoginSession).values(created_at=utcnow() - timedelta(days=31)))
        db.session.commit()
    assert client.get("/keys/").status_code == 302


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "x"],
)
def test_next_only_redirects_on_site(client, auth, target):
    auth.register()
    auth.logout()
    response = client.post(
        f"/auth/login?next={target}", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/keys/"


def test_next_keeps_a_local_path(client, auth):
    auth.register()
    auth.logout()
    response = client.get("/keys/openai")
    assert response.headers["Location"] == "/auth/login?next=/keys/openai"
    response = client.post(
        "/auth/login?next=/keys/openai", data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/keys/openai"


@pytest.mark.parametrize(
    ("path", "back_to"),
    [
        ("/keys/openai/validate", "/keys/"),  # a button: after signing in, the dashboard
        ("/auth/logout", "/keys/"),
        ("/keys/openai", "/keys/openai"),  # a form page: back to it
    ],
)
def test_a_post_after_the_session_ended_leads_back_to_a_page(app, client, auth, path, back_to):
    # Signed out elsewhere (a password change, the session's age): the next button press
    # sends the user to sign in, and from there to a page that can be shown, not a 405.
    auth.register()
    with app.app_context():
        db.session.execute(db.delete(LoginSession))
        db.session.commit()
    response = client.post(path, data={"api_key": "x"})
    assert response.status_code == 302
    signed_in = client.post(
        response.headers["Location"], data={"email": "alice@example.com", "password": PASSWORD}
    )
    assert signed_in.headers["Location"] == back_to
    assert client.get(back_to).status_code == 200


def _login_time(client, email: str, password: str) -> float:
    start = time.perf_counter()
    response = client.post("/auth/login", data={"email": email, "password": password})
    assert response.status_code == 400
    assert "Email or password is incorrect." in text(response)
    return time.perf_counter() - start


def test_login_failure_is_the_same_for_unknown_email_and_wrong_password(client, auth):
    auth.register()
    auth.logout()
    wrong = [_login_time(client, "alice@example.com", "wrong password 1") for _ in range(3)]
    unknown = [_login_time(client, "nobody@example.com", "wrong password 1") for _ in range(3)]
    # Both pay for one password hash, so neither is a fraction of the other.
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 < ratio < 2.0, (wrong, unknown)


def test_oversized_body_is_refused(client, auth):
    auth.register()
    response = client.post("/keys/openai", data={"api_key": "x" * (70 * 1024)})
    assert response.status_code == 413
    assert "too large" in text(response)


def test_a_nul_in_a_field_or_query_is_a_clear_400(client, auth, admin_client):
    # PostgreSQL cannot hold a NUL in text: looked up as it is, this email was a 500 there.
    auth.register()
    auth.logout()
    login = client.post("/auth/login", data={"email": "alice\x00@example.com", "password": "x"})
    assert login.status_code == 400 and "This is not an email address." in text(login)
    page = admin_client.get("/admin/audit?user=alice%00@example.com")
    assert page.status_code == 400 and "NUL character" in text(page)
    api = admin_client.get("/api/audit?user=%00")
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "invalid_text"
    assert auth.login().status_code == 302  # the account is untouched


def test_a_nul_in_the_path_or_the_user_agent_is_a_clear_400(app, auth, client):
    # Each would reach an audit row (the browser's User-Agent; a resolve's provider name).
    auth.register()
    rows = db.select(db.func.count(AuditEvent.id))
    with app.app_context():
        before = db.session.scalar(rows)
    logout = client.post("/auth/logout", headers={"User-Agent": "Mozilla/5.0\x00"})
    assert logout.status_code == 400 and "NUL character" in text(logout)
    resolve = client.post("/api/keys/resolve/gr%00oq", json={})
    assert resolve.status_code == 400 and resolve.get_json()["error"]["code"] == "invalid_text"
    assert client.get("/keys/").status_code == 200  # still signed in: nothing was done
    with app.app_context():
        assert db.session.scalar(rows) == before


def test_error_pages_are_in_the_site_look(client):
    response = client.get("/definitely-not-here")
    assert response.status_code == 404
    assert "Page not found" in text(response) and "Keyhold" in text(response)
    response = client.put("/auth/login")
    assert response.status_code == 405 and "Method not allowed" in text(response)
    assert "GET" in response.headers["Allow"]


def test_unexpected_error_is_a_clean_500(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom():
        raise RuntimeError("internal detail that must not leak")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "Something went wrong" in text(response)
    assert "internal detail" not in text(response) and "Traceback" not in text(response)
    json_response = app.test_client().get("/boom", headers={"Accept": "application/json"})
    assert json_response.status_code == 500
    assert json_response.get_json() == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side. Nothing was changed.",
        }
    }


def test_logging_out_deletes_the_remember_me_cookie(app, auth, client):
    auth.register()
    auth.logout()
    auth.login(remember="y")
    assert client.get_cookie("remember_token") is not None
    auth.logout()
    assert client.get_cookie("remember_token") is None


def test_changing_the_password_keeps_a_remembered_browser_signed_in(app, auth, client):
    # "Keep me signed in" survives the password change: after the browser restarts (the
    # session cookie gone), the remember-me cookie still signs its owner in.
    auth.register()
    auth.logout()
    auth.login(remember="y")
    new_password = "another correct horse battery"
    response = client.post(
        "/auth/password",
        data={"current": PASSWORD, "password": new_password, "confirm": new_password},
    )
    assert response.status_code == 302
    client.delete_cookie("session")
    assert client.get("/keys/").status_code == 200


def test_changing_the_password_does_not_start_remembering_a_browser(app, auth, client):
    auth.register()
    new_password = "another correct horse battery"
    client.post(
        "/auth/password",
        data={"current": PASSWORD, "password": new_password, "confirm": new_password},
    )
    assert client.get_cookie("remember_token") is None


def test_the_login_page_says_why_it_was_shown(client):
    response = client.get("/keys/", follow_redirects=True)
    assert "Please log in to continue." in response.get_data(as_text=True)


def test_a_change_of_network_keeps_the_user_signed_in(app, auth, client):
    # Wi-Fi to mobile, a VPN switched on: the same browser, another address.
    auth.register()
    auth.logout()
    auth.login(remember="y")
    client.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert client.get("/keys/").status_code == 200
    assert client.get_cookie("remember_token") is not None
    client.delete_cookie("session")  # and after the browser restarts, still remembered
    assert client.get("/keys/").status_code == 200


def test_a_login_link_opened_when_signed_in_goes_where_it_was_going(client, auth):
    auth.register()
    response = client.get("/auth/login?next=/keys/openai")
    assert response.headers["Location"] == "/keys/openai"
    assert client.get("/auth/login?next=https://evil.example/").headers["Location"] == "/keys/"


def test_signing_in_without_keep_me_signed_in_forgets_an_earlier_remembered_user(app, auth, client):
    # Alice was kept signed in on a shared browser; her sessions were ended elsewhere (a
    # password change), so the browser shows the login page with her old cookie still in it.
    auth.register()
    auth.logout()
    auth.login(remember="y")
    with app.app_context():
        db.session.execute(db.delete(LoginSession))
        db.session.commit()
    assert client.get("/keys/").status_code == 302
    assert client.get_cookie("remember_token") is not None
    auth.register("bob@example.com")  # Bob signs in on it without "Keep me signed in"
    assert client.get_cookie("remember_token") is None
    new_password = "another correct horse battery"
    client.post(
        "/auth/password",
        data={"current": PASSWORD, "password": new_password, "confirm": new_password},
    )
    assert client.get_cookie("remember_token") is None  # nor is Bob remembered after it
    client.delete_cookie("session")  # the browser restarts: nobody is signed in
    assert client.get("/keys/").status_code == 302


def test_a_remember_me_cookie_of_another_session_does_not_keep_the_browser_signed_in(auth, client):
    auth.register()
    client.set_cookie("remember_token", "1:stale|0000")  # not this session's (a forged one)
    new_password = "another correct horse battery"
    client.post(
        "/auth/password",
        data={"current": PASSWORD, "password": new_password, "confirm": new_password},
    )
    client.delete_cookie("session")
    assert client.get("/keys/").status_code == 302
