"""/admin/keys: global keys, set like users' keys, with a per-provider fallback switch."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import AuthActions
from tests.helpers import rows_of, store
from webapp.audit.models import AuditEvent
from webapp.auth.services import find_user
from webapp.crypto import KeyDecryptionError, KeyScope, current_keyring
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey
from webapp.keys.resolve import NoKeyAvailable, get_key_for

USER = "alice@example.com"


def text(response) -> str:
    return response.get_data(as_text=True)


def global_row(app, provider: str) -> GlobalAPIKey | None:
    with app.app_context():
        db.session.remove()
        row = db.session.scalar(db.select(GlobalAPIKey).filter_by(provider=provider))
        if row is not None:
            db.session.expunge(row)
        return row


def events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(db.select(AuditEvent).filter_by(action=action)).all()
        db.session.expunge_all()
        return list(rows)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/admin/keys"),
        ("get", "/admin/keys/openai"),
        ("post", "/admin/keys/openai"),
        ("get", "/admin/keys/openai/delete"),
        ("post", "/admin/keys/openai/fallback"),
        ("post", "/admin/keys/openai/validate"),
    ],
)
def test_admin_pages_refuse_other_users_and_record_it(app, user_client, method, path):
    alice = user_client(USER)
    response = getattr(alice, method)(path)
    assert response.status_code == 403
    assert "Only an admin can do that." in text(response)
    [event] = events(app, "access.denied")
    assert event.outcome == "denied" and event.details["reason"] == "admin_only"
    assert event.actor_user_id is not None
    assert getattr(app.test_client(), method)(path).status_code == 302  # anonymous: log in


def test_admin_adds_a_global_key_checked_with_the_provider(app, admin_client, emulator):
    key = emulator.valid_key("anthropic")
    response = admin_client.post(
        "/admin/keys/anthropic", data={"api_key": key}, follow_redirects=True
    )
    page = text(response)
    assert "The global Anthropic key was added. Status: Valid." in page
    assert key not in page and f"\u2026{key[-4:]}" in page
    assert emulator.received("anthropic"), "the provider was asked"
    row = global_row(app, "anthropic")
    assert row.status == "valid" and row.fallback_enabled is True
    assert row.updated_by_id is not None
    with app.app_context():
        keyring = current_keyring()
        assert keyring.decrypt(KeyScope.for_global("anthropic"), row.sealed) == key
        with pytest.raises(KeyDecryptionError):  # not readable as anybody's own key
            keyring.decrypt(KeyScope.for_user(row.updated_by_id, "anthropic"), row.sealed)
    [event] = events(app, "global_key.set")
    assert event.details["via"] == "admin" and key not in str(event.details)
    assert [e.details["status"] for e in events(app, "key.validate")] == ["valid"]


def test_a_key_the_provider_rejects_is_not_stored(app, admin_client, emulator):
    current = emulator.valid_key("groq")
    admin_client.post("/admin/keys/groq", data={"api_key": current})
    response = admin_client.post("/admin/keys/groq", data={"api_key": "gsk_" + "b" * 52})
    assert response.status_code == 400
    assert "The provider said" in text(response)
    with app.app_context():
        assert get_key_for(None, "groq").value == current  # the stored key is untouched


def test_a_provider_outage_stores_the_key_with_that_status(app, admin_client, emulator):
    emulator.set_mode("mistral", "down")
    response = admin_client.post(
        "/admin/keys/mistral", data={"api_key": "a" * 32}, follow_redirects=True
    )
    assert "Status: Provider error." in text(response)
    assert global_row(app, "mistral").status == "provider_error"


def test_malformed_keys_are_refused_before_any_request(app, admin_client, emulator):
    response = admin_client.post("/admin/keys/openai", data={"api_key": "not a key"})
    assert response.status_code == 400 and "spaces" in text(response)
    assert emulator.received("openai") == []
    assert global_row(app, "openai") is None


def test_fallback_switch(app, admin_client, user_client, emulator):
    user_client(USER)
    key = emulator.valid_key("groq")
    admin_client.post("/admin/keys/groq", data={"api_key": key})
    with app.app_context():
        assert get_key_for(find_user(USER), "groq").source == "global"

    response = admin_client.post(
        "/admin/keys/groq/fallback", data={"enabled": "off"}, follow_redirects=True
    )
    assert "no longer use the global key" in text(response)
    with app.app_context(), pytest.raises(NoKeyAvailable):
        get_key_for(find_user(USER), "groq")

    admin_client.post("/admin/keys/groq/fallback", data={"enabled": "on"})
    with app.app_context():
        assert get_key_for(find_user(USER), "groq").value == key
    assert [e.details["enabled"] for e in events(app, "global_key.fallback")] == [False, True]
    toggle = "/admin/keys/{}/fallback".format
    assert admin_client.post(toggle("groq"), data={"enabled": "x"}).status_code == 400
    assert admin_client.post(toggle("cohere"), data={"enabled": "on"}).status_code == 404  # no key


def test_delete_a_global_key(app, admin_client, emulator):
    assert admin_client.get("/admin/keys/groq/delete").status_code == 404
    admin_client.post("/admin/keys/groq", data={"api_key": emulator.valid_key("groq")})
    assert "Delete the global Groq key?" in text(admin_client.get("/admin/keys/groq/delete"))
    response = admin_client.post("/admin/keys/groq/delete", follow_redirects=True)
    assert "The global Groq key was deleted." in text(response)
    assert global_row(app, "groq") is None
    [event] = events(app, "global_key.delete")
    assert event.provider == "groq" and event.details["hint"].startswith("gsk_")


def test_check_now_records_what_the_provider_says(app, admin_client, emulator):
    key = emulator.valid_key("openai")
    admin_client.post("/admin/keys/openai", data={"api_key": key})
    emulator.set_mode("openai", "down")
    response = admin_client.post("/admin/keys/openai/validate", follow_redirects=True)
    assert "Checked the global OpenAI key: Provider error." in text(response)
    assert global_row(app, "openai").status == "provider_error"
    assert [e.details["trigger"] for e in events(app, "key.validate")] == ["save", "manual"]


def test_unknown_provider_is_a_404(admin_client):
    assert admin_client.get("/admin/keys/nope").status_code == 404
    assert admin_client.post("/admin/keys/nope", data={"api_key": "x"}).status_code == 404


def test_admins_never_see_users_keys(app, admin_client, user_client):
    user_client(USER)
    key = store(app, USER, "openai")
    hint = rows_of(app, USER)[0].key_hint
    for path in ("/admin/keys", "/admin/keys/openai", "/keys/"):
        page = text(admin_client.get(path))
        assert hint not in page and key[-4:] not in page


def test_global_key_plaintext_is_nowhere_after_saving(app, admin_client, emulator, caplog):
    caplog.set_level(logging.DEBUG)
    key = emulator.valid_key("deepseek")
    pages = [admin_client.post("/admin/keys/deepseek", data={"api_key": key})]
    pages += [admin_client.get(p) for p in ("/admin/keys", "/admin/keys/deepseek")]
    pages.append(admin_client.post("/admin/keys/deepseek/validate"))
    for response in pages:
        assert key not in text(response) + str(response.headers)
    assert key not in "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    with app.app_context():
        row = db.session.scalar(db.select(GlobalAPIKey))
        dumped = [str(v) for v in vars(row).values()]
        audit = [str(e.details) for e in db.session.scalars(db.select(AuditEvent))]
    assert all(key not in v for v in dumped + audit)


def test_admin_nav_link_only_for_admins(admin_client, user_client):
    assert "Global keys" in text(admin_client.get("/keys/"))
    assert "Global keys" not in text(user_client(USER).get("/keys/"))


def test_refusals_of_one_admin_page_are_audited_once_a_run_and_each_logged(make_app, caplog):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="1000/minute")
    alice = app.test_client()
    AuthActions(alice).register(USER)
    caplog.set_level(logging.WARNING)
    assert {alice.get("/admin/keys").status_code for _ in range(5)} == {403}
    assert alice.get("/admin/keys/openai").status_code == 403  # another page: on the record
    targets = [event.details["target"] for event in events(app, "access.denied")]
    assert targets == ["admin.keys", "admin.edit"]
    logged = [r for r in caplog.records if getattr(r, "event", None) == "access.denied"]
    assert len(logged) == 6
