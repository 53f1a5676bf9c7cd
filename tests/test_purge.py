"""``flask keys purge-user EMAIL``: the account goes with its keys and tokens; the trail stays."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_EMAIL
from tests.helpers import store
from tests.token_helpers import ALICE, BOB, audit_rows, call, issue
from webapp.audit.integrity import verify_chain
from webapp.audit.models import AuditEvent
from webapp.auth.models import User
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


def test_the_last_admin_stays_even_if_another_seemed_to_exist(app, runner, monkeypatch):
    # As when two purges run at once and each counts the other admin before either commits.
    monkeypatch.setattr("webapp.auth.purge._other_admins", lambda user: 1)
    last = runner.invoke(args=["keys", "purge-user", ADMIN_EMAIL, "--yes"])
    assert last.exit_code == 1 and "only admin account" in last.output
    assert count(app, User, email=ADMIN_EMAIL) == 1
    assert audit_rows(app, "user.purge") == []
