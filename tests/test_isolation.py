"""One user never reaches, changes or learns of another user's keys."""

from __future__ import annotations

from tests.helpers import rows_of, store


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
