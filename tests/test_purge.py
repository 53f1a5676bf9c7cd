"""``flask keys purge-user EMAIL``: the account goes with its keys and tokens; the trail stays."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text

from tests.conftest import ADMIN_EMAIL
from tests.helpers import store
from tests.token_helpers import ALICE, BOB, audit_rows, call, issue
from webapp.audit.integrity import verify_chain
from webapp.audit.models import AuditEvent
from webapp.auth.models import User
from webapp.auth.purge import purge_user
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import UserAPIKey
from webapp.tokens.models import AccessToken


def count(app, model, **filters) -> int:
    with app.app_context():
        db.session.remove()
        query = db.select(db.func.count()).select_from(model).filter_by(**filters)
        return db.session.scalar(query)


@pytest.fixture
def alice(user_client):
    return user_client(ALICE)


def test_purge_deletes_the_account_its_keys_and_tokens(app, alice, user_client, runner):
    user_client(BOB)
    store(app, ALICE, "openai")
    store(app, ALICE, "groq")
    store(app, BOB, "openai")
    _, token = issue(app, ALICE, scopes=["keys:read"])
    with app.app_context():
        alice_id = find_user(ALICE).id
    result = runner.invoke(args=["keys", "purge-user", ALICE, "--yes"])
    assert result.exit_code == 0, result.output
    assert f"Deleted user #{alice_id}: 2 key(s) (groq, openai), 1 access token(s)" in result.output
    assert count(app, User, email=ALICE) == 0
    assert count(app, UserAPIKey, user_id=alice_id) == 0
    assert count(app, AccessToken, user_id=alice_id) == 0
    assert count(app, UserAPIKey) == 1  # Bob's key is untouched
    # Her browser session and her token are dead.
    assert alice.get("/keys/").status_code == 302
    assert call(app.test_client(), "GET", "/api/api-keys/status", token).status_code == 401


def test_the_audit_trail_keeps_the_history_and_records_the_purge(app, alice, runner):
    store(app, ALICE, "openai")
    with app.app_context():
        alice_id = find_user(ALICE).id
    before = count(app, AuditEvent, subject_user_id=alice_id)
    runner.invoke(args=["keys", "purge-user", ALICE, "--yes"])
    (purge,) = audit_rows(app, "user.purge")
    assert purge.subject_user_id == alice_id and purge.actor_user_id is None
    assert purge.details == {"keys": 1, "providers": ["openai"], "tokens": 0}
    assert ALICE not in str(purge.details) and purge.user_agent == "flask command"
    assert count(app, AuditEvent, subject_user_id=alice_id) == before + 1
    with app.app_context():
        assert verify_chain().ok


def test_purge_asks_first(app, alice, runner):
    result = runner.invoke(args=["keys", "purge-user", ALICE], input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.output
    assert count(app, User, email=ALICE) == 1
    result = runner.invoke(args=["keys", "purge-user", ALICE], input="y\n")
    assert result.exit_code == 0 and count(app, User, email=ALICE) == 0


def test_purge_refuses_an_unknown_email_and_the_last_admin(app, runner):
    unknown = runner.invoke(args=["keys", "purge-user", "nobody@example.com", "--yes"])
    assert unknown.exit_code == 1 and "There is no account" in unknown.output
    last = runner.invoke(args=["keys", "purge-user", ADMIN_EMAIL, "--yes"])
    assert last.exit_code == 1 and "only admin account" in last.output
    assert count(app, User, email=ADMIN_EMAIL) == 1
    assert audit_rows(app, "user.purge") == []


@pytest.mark.parametrize("asked", [[], ["--yes"]])
def test_an_email_typed_in_another_encoding_is_a_message_not_a_traceback(app, runner, asked):
    # "renée@" from a Latin-1 terminal: a byte that is not UTF-8 reaches Python as a surrogate.
    result = runner.invoke(args=["keys", "purge-user", "ren\udce9e@example.com", *asked])
    assert result.exit_code == 2 and "not valid UTF-8 text" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_last_admin_stays_even_if_another_seemed_to_exist(app, runner, monkeypatch):
    # As when two purges run at once and each counts the other admin before either commits.
    monkeypatch.setattr("webapp.auth.purge._other_admins", lambda user: 1)
    last = runner.invoke(args=["keys", "purge-user", ADMIN_EMAIL, "--yes"])
    assert last.exit_code == 1 and "only admin account" in last.output
    assert count(app, User, email=ADMIN_EMAIL) == 1
    assert audit_rows(app, "user.purge") == []


@contextmanager
def held_before(app, statement: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Hold the first statement that starts with ``statement`` until ``go`` is set;
    ``reached`` says it got there."""
    reached, go = threading.Event(), threading.Event()

    def hook(conn, cursor, sql, *args) -> None:
        if sql.lstrip().upper().startswith(statement) and not reached.is_set():
            reached.set()
            go.wait(10)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield reached, go
    finally:
        go.set()
        event.remove(engine, "before_cursor_execute", hook)


def test_a_key_saved_as_the_account_is_purged_is_counted_with_it(app, alice, emulator):
    # The save has written its row and not yet committed when the purge begins: the purge
    # waits for it, and its report and audit row name the key it took with the account.
    results: dict = {}
    body = {"provider": "groq", "api_key": emulator.valid_key("groq"), "validate": False}

    def save() -> None:
        results["save"] = alice.post("/api/api-keys/set", json=body)

    def purge() -> None:
        with app.app_context():
            results["purge"] = purge_user(ALICE)

    with held_before(app, "INSERT INTO AUDIT_EVENTS") as (reached, go):
        saving = threading.Thread(target=save)
        saving.start()
        assert reached.wait(10)
        purging = threading.Thread(target=purge)
        purging.start()
        purging.join(0.5)  # the purge waits for the save (or, unguarded, counts without it)
        go.set()
        saving.join(10)
        purging.join(10)
    assert results["save"].status_code == 201
    assert (results["purge"].keys, results["purge"].providers) == (1, ["groq"])


def test_a_key_saved_after_the_account_is_gone_is_a_clear_refusal(app, alice, emulator):
    with app.app_context():
        user_id = find_user(ALICE).id
        engine = db.engine

    done: list[bool] = []

    def purged_meanwhile(conn, cursor, sql, *args) -> None:
        # Just before the save takes the account (to hold it while the key is written).
        if sql.lstrip().upper().startswith("SELECT USERS.ID \n") and not done:
            done.append(True)
            with engine.begin() as other:
                other.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id})

    event.listen(engine, "before_cursor_execute", purged_meanwhile)
    body = {"provider": "groq", "api_key": emulator.valid_key("groq"), "validate": False}
    try:
        response = alice.post("/api/api-keys/set", json=body)
    finally:
        event.remove(engine, "before_cursor_execute", purged_meanwhile)
    assert done
    assert response.status_code == 401
    message = response.get_json()["error"]["message"]
    assert message == "Your account no longer exists; nothing was saved."
    assert count(app, UserAPIKey) == 0
