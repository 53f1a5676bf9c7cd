"""Rate limits as a client meets them: 429 with Retry-After, per IP and per account,
proxy headers trusted only when configured, and one count shared through Redis.

Limits are off in every other test; each test here builds its own app with
them on. Flask-Limiter is one object per process, so an app with limits off
must not be built after one with them on in the same test.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import event

from tests.conftest import ADMIN_EMAIL, PASSWORD, AuthActions
from tests.helpers import drop_redis_keys
from tests.token_helpers import ALICE, call, issue
from webapp.audit.models import AuditEvent
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.logs import app_handler

ROOT = Path(__file__).resolve().parent.parent
#: CI runs the suite with Redis as the store; locally memory:// unless told otherwise
STORE = os.environ.get("RATELIMIT_STORAGE_URI") or "memory://"
SHARED_STORE = "redis://127.0.0.1:6379/13"
WRONG = "not the password at all"


@pytest.fixture
def limited(make_app):
    """``limited(**config)``: an app with limits on, counting in a store of its own."""
    used: set[tuple[str, str]] = set()  # (store, prefix)

    def factory(store: str = STORE, **config):
        """Pass RATELIMIT_STORAGE_OPTIONS of an earlier app to count in the same place."""
        options = config.pop("RATELIMIT_STORAGE_OPTIONS", None)
        options = options or {"key_prefix": f"keyhold-test-{uuid.uuid4().hex}"}
        used.add((store, options["key_prefix"]))
        config.setdefault("RATELIMIT_LOGIN_IP", "100/minute")
        config.setdefault("RATELIMIT_LOGIN_ACCOUNT", "100/minute")
        return make_app(
            RATELIMIT_ENABLED=True,
            RATELIMIT_STORAGE_URI=store,
            RATELIMIT_STORAGE_OPTIONS=options,
            **config,
        )

    yield factory
    for store, prefix in used:
        if store.startswith("redis://"):
            drop_redis_keys(store, f"{prefix}*")


def register(app, email: str = "alice@example.com") -> None:
    client = app.test_client()
    assert AuthActions(client).register(email).status_code == 302


def login(client, email: str = "alice@example.com", password: str = WRONG, ip: str | None = None):
    headers = {"X-Forwarded-For": ip} if ip else {}
    return client.post("/auth/login", data={"email": email, "password": password}, headers=headers)


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(
            db.select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)
        ).all()
        db.session.expunge_all()
        return list(rows)


def assert_limited_page(response) -> None:
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60
    html = response.get_data(as_text=True)
    assert "Slow down" in html and "Too many requests" in html


def test_the_attempt_after_the_limit_gets_429_with_retry_after(limited, caplog):
    caplog.set_level(logging.INFO, logger="webapp")
    app = limited(RATELIMIT_LOGIN_IP="3/minute")
    register(app)
    client = app.test_client()
    for _ in range(3):
        assert login(client).status_code == 400
    assert_limited_page(login(client))
    assert_limited_page(login(client, password=PASSWORD))  # even the right password waits

    # The refused attempts never reached the password check...
    assert len([r for r in audit_rows(app, "auth.login") if r.outcome == "denied"]) == 3
    # ...and a run of refusals is one audit row, not one per request.
    (hit,) = audit_rows(app, "ratelimit.hit")
    assert (hit.outcome, hit.actor_user_id, hit.ip) == ("denied", None, "127.0.0.1")
    assert hit.details == {"limit": "3 per 1 minute", "kind": "ip", "endpoint": "auth.login"}
    logged = [r for r in caplog.records if getattr(r, "event", None) == "ratelimit.hit"]
    assert len(logged) == 2 and logged[0].levelno == logging.WARNING
    assert logged[0].ip == "127.0.0.1" and "ip limit 3 per 1 minute" in logged[0].reason
    assert all(PASSWORD not in str(r.__dict__) for r in caplog.records)


def test_the_account_limit_holds_across_addresses(limited):
    app = limited(RATELIMIT_LOGIN_ACCOUNT="3/minute", TRUSTED_PROXIES=1)
    register(app)
    register(app, "bob@example.com")
    client = app.test_client()
    for n in range(3):
        assert login(client, ip=f"203.0.113.{n}").status_code == 400
    assert_limited_page(login(client, ip="198.51.100.7"))
    assert_limited_page(login(client, "ALICE@example.com ", ip="198.51.100.8"))
    # Another account is not locked by the attack on Alice's.
    assert login(client, "bob@example.com", ip="198.51.100.9").status_code == 400
    # Alice sees the attempts on her account in her own history.
    (hit,) = audit_rows(app, "ratelimit.hit")
    with app.app_context():
        assert hit.subject_user_id == find_user("alice@example.com").id
    assert hit.details["kind"] == "login-account"
    assert "alice" not in json.dumps(hit.details)


def test_guesses_at_an_email_no_database_can_look_up_are_still_a_429(limited):
    app = limited(RATELIMIT_LOGIN_ACCOUNT="2/minute")
    client = app.test_client()
    odd = "alice\x00@example.com"  # PostgreSQL cannot hold a NUL: the lookup itself fails

    def as_postgresql_does(conn, cursor, sql, params, *args) -> None:
        # The same refusal on every engine the suite runs on (SQLite would look it up).
        values = params.values() if isinstance(params, dict) else params or ()
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", as_postgresql_does)
    try:
        codes = [login(client, email=odd, ip=f"192.0.2.{n}").status_code for n in range(1, 5)]
    finally:
        event.remove(engine, "before_cursor_execute", as_postgresql_does)
    assert codes == [400, 400, 429, 429]


def test_signing_in_does_not_spend_the_accounts_failure_budget(limited):
    app = limited(RATELIMIT_LOGIN_ACCOUNT="3/minute")
    register(app)
    for _ in range(4):  # four devices
        assert login(app.test_client(), password=PASSWORD).status_code == 302
    client = app.test_client()
    assert [login(client).status_code for _ in range(4)] == [400, 400, 400, 429]


def test_key_checks_are_limited_per_user(limited, emulator):
    app = limited(RATELIMIT_VALIDATE="2/hour")
    alice, bob = app.test_client(), app.test_client()
    for client, email in ((alice, "alice@example.com"), (bob, "bob@example.com")):
        AuthActions(client).register(email)
        client.post("/keys/groq", data={"api_key": emulator.valid_key("groq")})
    # The buttons and the API draw from the same budget: each sends a request to a provider.
    assert alice.post("/keys/groq/validate").status_code == 302
    assert alice.post("/api/api-keys/validate/groq", json={}).status_code == 200
    refused = alice.post("/keys/validate-all")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 60
    checks = len(emulator.received("groq"))
    assert bob.post("/keys/groq/validate").status_code == 302
    assert len(emulator.received("groq")) == checks + 1


def test_forwarded_for_is_ignored_without_trusted_proxies(limited):
    app = limited(RATELIMIT_LOGIN_IP="3/minute")
    client = app.test_client()
    for n in range(3):
        response = login(client, f"user{n}@example.com", ip=f"203.0.113.{n}")
        assert response.status_code == 400
    assert login(client, "user9@example.com", ip="203.0.113.99").status_code == 429
    ips = {row.ip for row in audit_rows(app, "auth.login")}
    assert ips == {"127.0.0.1"}  # the header was not believed anywhere


def test_forwarded_for_is_honoured_behind_a_trusted_proxy(limited):
    app = limited(RATELIMIT_LOGIN_IP="3/minute", TRUSTED_PROXIES=1)
    client = app.test_client()
    for n in range(6):
        assert login(client, f"user{n}@example.com", ip=f"203.0.113.{n}").status_code == 400
    assert {row.ip for row in audit_rows(app, "auth.login")} == {f"203.0.113.{n}" for n in range(6)}
    # One client behind the proxy is still limited by its own address.
    for n in range(2):
        assert login(client, f"other{n}@example.com", ip="203.0.113.0").status_code == 400
    assert login(client, "other9@example.com", ip="203.0.113.0").status_code == 429
    # With two proxies configured, the address two hops back is the client's.
    two = limited(TRUSTED_PROXIES=2)
    login(two.test_client(), "x@example.com", ip="192.0.2.1, 203.0.113.50")
    assert audit_rows(two, "auth.login")[-1].ip == "192.0.2.1"


def test_registration_is_limited_per_address(limited):
    app = limited(RATELIMIT_REGISTER="2/minute")
    client = app.test_client()
    auth = AuthActions(client)
    assert auth.register("a@example.com").status_code == 302
    auth.logout()
    assert auth.register("b@example.com").status_code == 302
    auth.logout()
    assert auth.register("c@example.com").status_code == 429
    with app.app_context():
        assert find_user("c@example.com") is None


def test_key_writes_are_limited_per_user(limited, emulator):
    app = limited(RATELIMIT_KEY_WRITE="2/hour")
    alice, bob = app.test_client(), app.test_client()
    AuthActions(alice).register("alice@example.com")
    AuthActions(bob).register("bob@example.com")

    def save(client):
        return client.post("/keys/groq", data={"api_key": emulator.valid_key("groq")})

    assert [save(alice).status_code for _ in range(2)] == [302, 302]
    response = save(alice)
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert save(bob).status_code == 302


def test_the_pages_and_the_api_spend_one_key_write_budget(limited, emulator):
    app = limited(RATELIMIT_KEY_WRITE="3/hour")
    client = app.test_client()
    AuthActions(client).register()
    key = emulator.valid_key("groq")
    assert client.post("/keys/groq", data={"api_key": key}).status_code == 302
    assert (
        client.post("/api/api-keys/set", json={"provider": "groq", "api_key": key}).status_code
        == 200
    )
    reminder = client.post("/api/api-keys/expiry/groq", json={"expires_at": None})
    assert reminder.status_code == 200
    assert (
        client.post("/api/api-keys/set", json={"provider": "groq", "api_key": key}).status_code
        == 429
    )
    assert client.post("/keys/groq", data={"api_key": key}).status_code == 429


def test_global_key_writes_share_one_budget_on_the_page_and_the_api(limited, emulator):
    # Each save may ask the provider: an admin session gets no unlimited path through the API.
    app = limited(RATELIMIT_KEY_WRITE="2/hour")
    admin = app.test_client()
    assert AuthActions(admin).login(ADMIN_EMAIL).status_code == 302
    body = {"provider": "groq", "api_key": emulator.valid_key("groq"), "validate": False}
    assert admin.post("/admin/keys/groq", data={"api_key": body["api_key"]}).status_code == 302
    assert admin.post("/api/api-keys/set-initial", json=body).status_code == 200
    refused = admin.post("/api/api-keys/set-initial", json=body)
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "rate_limited"
    assert admin.post("/admin/keys/groq", data={"api_key": body["api_key"]}).status_code == 429
    # The setup token's header exempts only the API call that checks it, never the page.
    with_header = {"X-Setup-Token": "anything"}
    page = admin.post("/admin/keys/groq", data={"api_key": body["api_key"]}, headers=with_header)
    assert page.status_code == 429


def test_api_answers_429_in_json_and_pages_in_html(limited):
    app = limited(RATELIMIT_DEFAULT="2/minute")
    client = app.test_client()
    AuthActions(client).register()
    for _ in range(2):
        assert client.get("/api/providers").status_code == 200
    response = client.get("/api/providers")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.get_json()["error"]["code"] == "rate_limited"
    for _ in range(2):
        assert client.get("/keys/").status_code == 200
    assert_limited_page(client.get("/keys/"))


def test_answers_that_went_through_tell_the_budget_but_ask_no_one_to_wait(limited):
    app = limited(RATELIMIT_DEFAULT="3/minute")
    client = app.test_client()
    AuthActions(client).register()
    for remaining in ("2", "1", "0"):
        response = client.get("/api/providers")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Remaining"] == remaining
        assert "Retry-After" not in response.headers
    refused = client.get("/api/providers")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_password_checks_are_limited_for_a_signed_in_session(limited):
    app = limited(RATELIMIT_LOGIN_ACCOUNT="2/minute")
    client = app.test_client()
    AuthActions(client).register()
    data = {"current": "wrong password here", "password": PASSWORD, "confirm": PASSWORD}
    for _ in range(2):
        assert client.post("/auth/password", data=data).status_code == 400
    assert client.post("/auth/password", data=data).status_code == 429


def test_a_signed_in_users_refused_password_guesses_are_on_their_own_record(limited):
    # The budget spent is the signed-in account's; an email field added to the form must not
    # file the refusal under another account (in its activity, out of the guesser's own).
    app = limited(RATELIMIT_LOGIN_ACCOUNT="2/minute")
    register(app)
    bob = app.test_client()
    AuthActions(bob).register("bob@example.com")
    data = {"current": "wrong password here", "password": PASSWORD, "confirm": PASSWORD}
    data["email"] = "alice@example.com"
    codes = [bob.post("/auth/password", data=data).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    (hit,) = audit_rows(app, "ratelimit.hit")
    with app.app_context():
        bob_id = find_user("bob@example.com").id
    assert (hit.actor_user_id, hit.subject_user_id) == (bob_id, bob_id)
    assert any(e["action"] == "ratelimit.hit" for e in bob.get("/api/audit").json["events"])
    alice = app.test_client()
    assert AuthActions(alice).login(password=PASSWORD).status_code == 302
    assert "ratelimit.hit" not in {e["action"] for e in alice.get("/api/audit").json["events"]}


def test_one_budget_of_wrong_passwords_wherever_they_are_tried(limited):
    # A stolen remember-me cookie: confirming, changing the password and signing in all try
    # passwords against the same account, so they spend one budget, not one each.
    app = limited(RATELIMIT_LOGIN_ACCOUNT="3/minute")
    thief = app.test_client()
    AuthActions(thief).register()
    thief.post("/auth/logout")
    AuthActions(thief).login(remember="y")
    thief.delete_cookie("session")
    assert thief.post("/auth/confirm", data={"password": "guess number one"}).status_code == 400
    data = {"current": "guess number two", "password": PASSWORD, "confirm": PASSWORD}
    assert thief.post("/auth/password", data=data).status_code == 400
    guess = AuthActions(app.test_client()).login(password="guess number three")
    assert guess.status_code == 400
    assert thief.post("/auth/confirm", data={"password": PASSWORD}).status_code == 429
    assert AuthActions(app.test_client()).login().status_code == 429


def test_limits_are_off_when_disabled(make_app):
    app = make_app()
    client = app.test_client()
    register(app)
    assert {login(client).status_code for _ in range(15)} == {400}


def _other_process(db_url: str, config: dict, attempts: int) -> list[int]:
    job = {"db_url": db_url, "config": config, "email": "alice@example.com", "attempts": attempts}
    done = subprocess.run(
        [sys.executable, "-m", "tests.ratelimit_process"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_app_instances_share_the_count_through_redis(limited, db_url, tmp_path):
    redis.Redis.from_url(SHARED_STORE).ping()  # Redis must be there: this test cannot skip
    config = {
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_LOGIN_ACCOUNT": "4/minute",
        "RATELIMIT_LOGIN_IP": "100/minute",
        "SETUP_TOKEN_FILE": str(tmp_path / "setup-token"),
    }
    app = limited(SHARED_STORE, RATELIMIT_LOGIN_ACCOUNT="4/minute")
    register(app)
    client = app.test_client()
    assert [login(client).status_code for _ in range(2)] == [400, 400]
    prefix = app.config["RATELIMIT_STORAGE_OPTIONS"]["key_prefix"]
    shared = {
        **config,
        "RATELIMIT_STORAGE_URI": SHARED_STORE,
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": prefix},
    }
    # The other process sees the two attempts made here, so its third is over the limit...
    assert _other_process(db_url, shared, 3) == [400, 400, 429]
    # ...and this process sees the ones made there.
    assert login(client).status_code == 429
    # Control: with per-process memory stores, neither process knows of the other.
    alone = {**config, "RATELIMIT_STORAGE_URI": "memory://"}
    assert _other_process(db_url, alone, 3) == [400, 400, 400]


def test_instances_told_apart_by_a_key_prefix_keep_their_own_token_budgets(limited):
    # Two Keyhold instances on one Redis database, as RATELIMIT_KEY_PREFIX allows. Here they
    # share a database too, so the same token works on both: its budgets must still be two.
    first = limited(SHARED_STORE, RATELIMIT_TOKEN="2/minute", RATELIMIT_KEY_PREFIX="first")
    options = first.config["RATELIMIT_STORAGE_OPTIONS"]
    second = limited(
        SHARED_STORE,
        RATELIMIT_TOKEN="2/minute",
        RATELIMIT_KEY_PREFIX="second",
        RATELIMIT_STORAGE_OPTIONS=options,
    )
    AuthActions(first.test_client()).register(ALICE)
    _, token = issue(first)
    on_first, on_second = first.test_client(), second.test_client()
    status = "/api/api-keys/status"
    assert [call(on_first, "GET", status, token).status_code for _ in range(3)] == [200, 200, 429]
    assert [call(on_second, "GET", status, token).status_code for _ in range(3)] == [200, 200, 429]


def test_a_rate_limit_store_that_goes_away_is_logged(make_app):
    # Every worker then counts on its own: an operator must hear of it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{port}/0")
    stream = io.StringIO()
    previous = app_handler().setStream(stream)
    try:
        response = app.test_client().post("/auth/login", data={"email": "x@example.com"})
    finally:
        app_handler().setStream(previous)
    assert response.status_code == 400  # served all the same, counted in the worker
    assert "flask-limiter: Rate limit storage unreachable" in stream.getvalue()
