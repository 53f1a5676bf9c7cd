"""One user never reaches, changes or learns of another user's keys."""

from __future__ import annotations

from tests.helpers import rows_of, store
from tests.token_helpers import issue
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import UserAPIKey
from webapp.tokens.models import AccessToken


def test_other_users_keys_are_invisible_and_untouchable(app, user_client):
    alice = user_client("alice@example.com")
    bob = user_client("bob@example.com")
    key = store(app, "alice@example.com", "openai")
    alice_hint = rows_of(app, "alice@example.com")[0].key_hint

    assert alice_hint in alice.get("/keys/").get_data(as_text=True)

    dashboard = bob.get("/keys/").get_data(as_text=True)
    assert alice_hint not in dashboard and key[-4:] not in dashboard
    form = bob.get("/keys/openai").get_data(as_text=True)
    assert "Add your OpenAI key" in form and alice_hint not in form

    # Not 403: nothing that would tell Bob the key exists.
    assert bob.get("/keys/openai/delete").status_code == 404
    assert bob.post("/keys/openai/delete").status_code == 404
    assert [r.provider for r in rows_of(app, "alice@example.com")] == ["openai"]


def test_same_provider_keys_are_separate_per_user(app, user_client):
    user_client("alice@example.com")
    bob = user_client("bob@example.com")
    store(app, "alice@example.com", "groq")
    store(app, "bob@example.com", "groq")
    bob.post("/keys/groq/delete")
    assert rows_of(app, "bob@example.com") == []
    assert [r.provider for r in rows_of(app, "alice@example.com")] == ["groq"]


def _delete_user(app, email: str) -> int:
    """Delete an account the way an operator's script would; return its id."""
    with app.app_context():
        user = find_user(email)
        user_id = user.id
        db.session.delete(user)
        db.session.commit()
    return user_id


def test_deleting_a_user_deletes_their_keys_and_tokens(app, user_client):
    user_client("alice@example.com")
    user_client("bob@example.com")
    store(app, "alice@example.com", "openai")
    store(app, "bob@example.com", "openai")
    issue(app, "bob@example.com")
    bob_id = _delete_user(app, "bob@example.com")
    with app.app_context():
        keys = db.session.scalars(db.select(UserAPIKey.user_id)).all()
        tokens = db.session.scalars(db.select(AccessToken.user_id)).all()
    assert bob_id not in keys and bob_id not in tokens
    assert len(keys) == 1  # Alice's is still there


def test_a_new_user_never_gets_a_deleted_users_id(app, user_client):
    user_client("alice@example.com")
    user_client("bob@example.com")  # the newest account
    key = store(app, "bob@example.com", "openai")
    hint = rows_of(app, "bob@example.com")[0].key_hint
    bob_id = _delete_user(app, "bob@example.com")

    carol = user_client("carol@example.com")
    with app.app_context():
        assert find_user("carol@example.com").id > bob_id
    dashboard = carol.get("/keys/").get_data(as_text=True)
    assert hint not in dashboard and key[-4:] not in dashboard
    assert "Add your OpenAI key" in carol.get("/keys/openai").get_data(as_text=True)
