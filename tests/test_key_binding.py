"""A stored key is bound to its settings: changed in the database, the key goes nowhere."""

from __future__ import annotations

import pytest

from tests.conftest import AuthActions
from tests.helpers import store
from webapp.auth.services import find_user
from webapp.crypto import KeyDecryptionError
from webapp.extensions import db
from webapp.keys import global_keys, resolve, service
from webapp.keys.models import GlobalAPIKey, UserAPIKey

USER = "alice@example.com"


@pytest.fixture
def app(make_app):
    # The providers' endpoints are the emulator's, on loopback over http.
    return make_app(ALLOW_HTTP_ENDPOINTS=True, ALLOW_PRIVATE_ENDPOINTS=True)


def set_config(app, model, provider: str, config: dict) -> None:
    """What someone with write access to the database (and nothing else) can do."""
    with app.app_context():
        db.session.execute(db.update(model).filter_by(provider=provider).values(config=config))
        db.session.commit()


def redirected(emulator, provider: str) -> dict[str, str]:
    """The provider's settings pointed at another host (the emulator's openai, so that any
    request sent there is seen)."""
    config = emulator.endpoint_config(provider)
    field = "endpoint" if provider == "azure_openai" else "base_url"
    return {**config, field: emulator.base_url("openai")}


@pytest.mark.parametrize("provider", ["custom", "azure_openai"])
def test_a_redirected_key_is_refused_and_nothing_is_sent(app, emulator, provider):
    client = app.test_client()
    AuthActions(client).register(USER)
    store(app, USER, provider, emulator.valid_key(provider), **emulator.endpoint_config(provider))
    set_config(app, UserAPIKey, provider, redirected(emulator, provider))

    with app.app_context():
        user = find_user(USER)
        with pytest.raises(KeyDecryptionError, match="its settings"):
            resolve.get_key_for(user, provider)
        row = db.session.scalar(db.select(UserAPIKey).filter_by(provider=provider))
        with pytest.raises(KeyDecryptionError, match="its settings"):
            service.decrypt_row(row)

    response = client.post(f"/keys/{provider}/validate")
    assert response.status_code == 500
    assert "A stored key could not be decrypted" in response.get_data(as_text=True)
    response = client.post(f"/api/api-keys/validate/{provider}", json={})
    assert response.status_code == 500 and response.get_json()["error"]["code"] == "key_unreadable"
    client.post("/keys/validate-all")
    assert emulator.received() == []


def test_a_changed_api_version_is_refused_too(app, emulator):
    AuthActions(app.test_client()).register(USER)
    config = emulator.endpoint_config("azure_openai")
    store(app, USER, "azure_openai", emulator.valid_key("azure_openai"), **config)
    set_config(app, UserAPIKey, "azure_openai", {**config, "api_version": "2099-01-01"})
    with app.app_context(), pytest.raises(KeyDecryptionError, match="its settings"):
        resolve.get_key_for(find_user(USER), "azure_openai")


def test_a_redirected_global_key_is_refused_and_nothing_is_sent(app, admin_client, emulator):
    with app.app_context():
        global_keys.save_global_key(
            "custom",
            emulator.valid_key("custom"),
            emulator.endpoint_config("custom"),
            actor=None,
            validate=False,
        )
    set_config(app, GlobalAPIKey, "custom", redirected(emulator, "custom"))
    with app.app_context(), pytest.raises(KeyDecryptionError, match="its settings"):
        resolve.get_key_for(None, "custom")
    assert admin_client.post("/admin/keys/custom/validate").status_code == 500
    assert emulator.received() == []


def test_untouched_settings_still_work(app, emulator):
    AuthActions(app.test_client()).register(USER)
    key = emulator.valid_key("custom")
    store(app, USER, "custom", key, **emulator.endpoint_config("custom"))
    with app.app_context():
        resolved = resolve.get_key_for(find_user(USER), "custom")
    assert resolved.value == key and resolved.config == emulator.endpoint_config("custom")
