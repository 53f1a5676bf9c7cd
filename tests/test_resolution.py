"""get_key_for: the one call an application makes before it talks to a provider."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from tests.fakekeys import fake_key
from tests.helpers import store
from webapp.auth.services import find_user
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys import global_keys
from webapp.keys.errors import UnknownProvider
from webapp.keys.models import GlobalAPIKey, UserAPIKey
from webapp.keys.resolve import NoKeyAvailable, get_key_for
from webapp.keys.statuses import key_status, list_status

EMAIL = "alice@example.com"


@pytest.fixture
def alice(app, user_client):
    user_client(EMAIL)
    return EMAIL


def store_global(app, provider: str, *, fallback: bool = True, **config) -> str:
    key = fake_key(provider)
    with app.app_context():
        global_keys.save_global_key(provider, key, config, actor=None, validate=False)
        if not fallback:
            row = global_keys.find_global(provider)
            global_keys.set_fallback(provider, False, actor=find_user(EMAIL))
            assert row.fallback_enabled is False
    return key


def mark(app, model, provider: str, **values) -> None:
    with app.app_context():
        db.session.execute(db.update(model).filter_by(provider=provider).values(**values))
        db.session.commit()


def resolve(app, provider: str, email: str | None = EMAIL):
    with app.app_context():
        user = find_user(email) if email else None
        return get_key_for(user, provider)


def last_used(app, model, provider: str):
    with app.app_context():
        db.session.remove()
        return db.session.scalar(db.select(model.last_used_at).filter_by(provider=provider))


def test_the_users_own_key_wins_over_the_global_one(app, alice):
    own = store(app, EMAIL, "openai")
    store_global(app, "openai")
    resolved = resolve(app, "openai")
    assert (resolved.value, resolved.source) == (own, "user")
    assert last_used(app, UserAPIKey, "openai") is not None
    assert last_used(app, GlobalAPIKey, "openai") is None


def test_without_an_own_key_the_global_key_is_used_where_fallback_is_allowed(app, alice):
    shared = store_global(app, "groq")
    resolved = resolve(app, "groq")
    assert (resolved.value, resolved.source) == (shared, "global")
    assert last_used(app, GlobalAPIKey, "groq") is not None


def test_no_fallback_where_the_admin_turned_it_off(app, alice):
    store_global(app, "groq", fallback=False)
    with pytest.raises(NoKeyAvailable) as caught:
        resolve(app, "groq")
    assert caught.value.reason == "no_key"
    assert "no Groq key" in caught.value.message


def test_an_invalid_own_key_falls_back_to_the_global_key(app, alice):
    store(app, EMAIL, "mistral")
    mark(app, UserAPIKey, "mistral", is_valid=False, status="invalid")
    shared = store_global(app, "mistral")
    resolved = resolve(app, "mistral")
    assert (resolved.value, resolved.source) == (shared, "global")


def test_an_invalid_own_key_without_fallback_is_an_error_that_says_so(app, alice):
    store(app, EMAIL, "mistral")
    mark(app, UserAPIKey, "mistral", is_valid=False, status="invalid")
    store_global(app, "mistral", fallback=False)
    with pytest.raises(NoKeyAvailable) as caught:
        resolve(app, "mistral")
    assert caught.value.reason == "key_invalid"
    assert "rejected" in caught.value.message and caught.value.status == 404


def test_an_invalid_global_key_is_not_handed_out(app, alice):
    store_global(app, "groq")
    mark(app, GlobalAPIKey, "groq", is_valid=False, status="invalid")
    with pytest.raises(NoKeyAvailable):
        resolve(app, "groq")


def test_an_unchecked_or_unreachable_own_key_is_still_used(app, alice):
    own = store(app, EMAIL, "openai")
    store_global(app, "openai")
    mark(app, UserAPIKey, "openai", is_valid=None, status="network_error")
    assert resolve(app, "openai").source == "user"
    assert resolve(app, "openai").value == own


def test_no_key_at_all_raises_no_key_available(app, alice):
    with pytest.raises(NoKeyAvailable) as caught:
        resolve(app, "anthropic")
    assert caught.value.reason == "no_key" and caught.value.code == "no_key_available"


def test_unknown_provider_is_refused(app, alice):
    with pytest.raises(UnknownProvider):
        resolve(app, "nope")


def test_without_a_user_only_the_global_key_counts(app, alice):
    store(app, EMAIL, "openai")
    with pytest.raises(NoKeyAvailable):
        resolve(app, "openai", email=None)
    shared = store_global(app, "openai")
    assert resolve(app, "openai", email=None).value == shared


def test_config_comes_with_the_key(app, alice):
    endpoint = {"base_url": "https://llm.example.com/v1"}
    store_global(app, "custom", **endpoint)
    assert resolve(app, "custom").config == endpoint


def test_the_resolved_key_never_shows_in_its_repr(app, alice):
    own = store(app, EMAIL, "groq")
    resolved = resolve(app, "groq")
    assert own not in repr(resolved) and own not in str(resolved)


def _statements(app, call) -> list[str]:
    seen: list[str] = []

    def listen(conn, cursor, statement, *args):
        seen.append(statement.split()[0].upper())

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", listen)
        try:
            call()
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    return [s for s in seen if s in ("SELECT", "UPDATE", "INSERT", "DELETE")]


def test_a_resolution_costs_its_lookups_and_one_update(app, alice):
    store(app, EMAIL, "openai")
    store_global(app, "groq")
    with app.app_context():
        user = find_user(EMAIL)
        user_id = user.id
        db.session.expunge(user)
    # The user object is loaded already, as current_user is in a request.
    with app.app_context():
        user = db.session.get(type(user), user_id)
        own = _statements(app, lambda: get_key_for(user, "openai"))
        fallback = _statements(app, lambda: get_key_for(user, "groq"))
    assert own == ["SELECT", "UPDATE"]
    assert fallback == ["SELECT", "SELECT", "UPDATE"]


def test_use_is_recorded_without_touching_when_the_key_was_stored(app, alice):
    store(app, EMAIL, "openai")
    past = utcnow() - timedelta(days=3)
    mark(app, UserAPIKey, "openai", updated_at=past)
    before = utcnow()
    resolve(app, "openai")
    with app.app_context():
        db.session.remove()
        row = db.session.scalar(db.select(UserAPIKey).filter_by(provider="openai"))
        assert row.last_used_at >= before
        assert abs(row.updated_at - past) < timedelta(seconds=1)


def test_status_source_says_what_get_key_for_would_use(app, alice):
    store(app, EMAIL, "openai")
    store(app, EMAIL, "mistral")
    mark(app, UserAPIKey, "mistral", is_valid=False, status="invalid")
    store_global(app, "mistral")
    store_global(app, "groq")
    store_global(app, "cohere", fallback=False)
    with app.app_context():
        user = find_user(EMAIL)
        sources = {s.provider: s.source for s in list_status(user)}
        assert key_status(user, "groq").source == "global"
        assert key_status(user, "cohere").source == "none"
    assert sources["openai"] == "user"
    assert sources["mistral"] == "global"
    assert sources["groq"] == "global"
    assert sources["cohere"] == "none"
    assert sources["anthropic"] == "none"
    for provider, source in sources.items():
        if source == "none":
            with pytest.raises(NoKeyAvailable):
                resolve(app, provider)
        else:
            assert resolve(app, provider).source == source
