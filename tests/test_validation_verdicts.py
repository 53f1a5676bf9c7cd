"""What is known of a key belongs to that key: a new key starts afresh; outages change nothing."""

from __future__ import annotations

import pytest

from tests.validation_helpers import (
    EMAIL,
    api_status,
    app_for,
    badge,
    dashboard_row,
    page,
    row_of,
    signed_in,
    store_key,
    validate,
)
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey
from webapp.keys.resolve import NoKeyAvailable, get_key_for

#: provider answers that say nothing of a key: throttled (rate_limited), down (provider_error)
UNJUDGED = ["throttled", "down"]
#: emulator modes of an outage or a block, and what a check during one concludes
OUTAGES = [
    ("down", "provider_error"),
    ("html", "provider_error"),
    ("close", "network_error"),
    ("blocked", "forbidden"),  # a region block, before the provider looks at the key
]


def resolve(app, email: str = EMAIL):
    with app.app_context():
        db.session.remove()
        return get_key_for(find_user(email), "openai")


def global_row(app) -> GlobalAPIKey:
    with app.app_context():
        db.session.remove()
        row = db.session.scalar(db.select(GlobalAPIKey).filter_by(provider="openai"))
        db.session.expunge(row)
        return row


# -- replacing a user's key ------------------------------------------------------------


@pytest.mark.parametrize("mode", UNJUDGED)
def test_a_new_key_does_not_inherit_the_old_keys_good_name(make_app, emulator, mode):
    app = make_app()
    client = signed_in(app)
    client.post("/keys/openai", data={"api_key": emulator.valid_key("openai")})
    assert row_of(app, "openai").is_valid is True
    emulator.set_mode("openai", mode)

    new = emulator.register("openai", state="revoked")  # what the outage hides
    response = client.post("/keys/openai", data={"api_key": new}, follow_redirects=True)
    row = dashboard_row(page(response), "openai")
    assert "models</li>" not in row  # the old key's models are not this key's
    stored = row_of(app, "openai")
    assert stored.is_valid is None and stored.models == []
    assert api_status(client, "openai")["is_valid"] is None


@pytest.mark.parametrize("mode", UNJUDGED)
def test_a_new_key_is_not_refused_for_the_old_keys_rejection(make_app, emulator, mode):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openai")  # unknown to the provider
    validate(client, "openai")
    assert row_of(app, "openai").is_valid is False
    emulator.set_mode("openai", mode)

    new = emulator.valid_key("openai")
    assert client.post("/keys/openai", data={"api_key": new}).status_code == 302
    assert row_of(app, "openai").is_valid is None
    resolved = resolve(app)
    assert resolved.source == "user" and resolved.value == new


@pytest.mark.parametrize("provider", ["openai", "custom"])  # custom: the settings are bound too
def test_the_same_key_saved_again_keeps_what_is_known_of_it(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    key = emulator.valid_key(provider)
    form = {"api_key": key, **emulator.endpoint_config(provider)}
    client.post(f"/keys/{provider}", data=form)
    models = row_of(app, provider).models
    assert models
    emulator.set_mode(provider, "throttled")
    client.post(f"/keys/{provider}", data=form)
    stored = row_of(app, provider)
    assert stored.status == "rate_limited"
    assert stored.is_valid is True and stored.models == models


def test_the_same_key_saved_again_unchecked_keeps_its_rejection(make_app, emulator):
    # A script re-saving a key the provider has since rejected, with the check skipped:
    # nothing new is known, so the key stays rejected and the global key stays in use.
    app = make_app()
    client = signed_in(app)
    key = store_key(app, emulator, "openai")  # unknown to the provider
    validate(client, "openai")
    assert row_of(app, "openai").is_valid is False
    body = {"provider": "openai", "api_key": key, "validate": False}
    assert client.post("/api/api-keys/set", json=body).status_code == 200
    stored = row_of(app, "openai")
    assert stored.status == "invalid" and stored.is_valid is False
    assert api_status(client, "openai")["is_valid"] is False


# -- replacing a global key ------------------------------------------------------------


@pytest.mark.parametrize("mode", UNJUDGED)
def test_a_new_global_key_does_not_inherit_the_old_keys_good_name(
    app, admin_client, emulator, mode
):
    admin_client.post("/admin/keys/openai", data={"api_key": emulator.valid_key("openai")})
    assert global_row(app).is_valid is True
    emulator.set_mode("openai", mode)

    new = emulator.register("openai", state="revoked")
    assert admin_client.post("/admin/keys/openai", data={"api_key": new}).status_code == 302
    row = global_row(app)
    assert row.is_valid is None and row.models == []


@pytest.mark.parametrize("mode", UNJUDGED)
def test_a_new_global_key_is_not_refused_for_the_old_keys_rejection(
    app, admin_client, user_client, emulator, mode
):
    user_client(EMAIL)
    emulator.set_mode("openai", "down")  # stored unjudged...
    admin_client.post("/admin/keys/openai", data={"api_key": emulator.register("openai")})
    emulator.reset()  # ...then the provider is back and has forgotten the key
    admin_client.post("/admin/keys/openai/validate")
    assert global_row(app).is_valid is False
    emulator.set_mode("openai", mode)

    new = emulator.valid_key("openai")
    assert admin_client.post("/admin/keys/openai", data={"api_key": new}).status_code == 302
    assert global_row(app).is_valid is None
    resolved = resolve(app)
    assert resolved.source == "global" and resolved.value == new


# -- outages -----------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "status"), OUTAGES)
def test_an_outage_does_not_make_a_rejected_key_usable_again(make_app, emulator, mode, status):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openai")  # unknown to the provider
    validate(client, "openai")
    emulator.set_mode("openai", mode)

    validate(client, "openai")
    stored = row_of(app, "openai")
    assert stored.status == status and stored.is_valid is False
    assert api_status(client, "openai")["is_valid"] is False
    with pytest.raises(NoKeyAvailable) as refused:
        resolve(app)
    assert refused.value.reason == "key_invalid"


@pytest.mark.parametrize(("mode", "status"), OUTAGES)
def test_an_outage_does_not_cast_doubt_on_a_good_key(make_app, emulator, mode, status):
    app = make_app()
    client = signed_in(app)
    key = store_key(app, emulator, "openai", emulator.valid_key("openai"))
    validate(client, "openai")
    emulator.set_mode("openai", mode)

    validate(client, "openai")
    stored = row_of(app, "openai")
    assert stored.status == status and stored.is_valid is True
    assert resolve(app).value == key


@pytest.mark.parametrize(("mode", "status"), OUTAGES)
def test_an_outage_leaves_a_global_keys_rejection_standing(
    app, admin_client, user_client, emulator, mode, status
):
    user_client(EMAIL)
    emulator.set_mode("openai", "down")
    admin_client.post("/admin/keys/openai", data={"api_key": emulator.register("openai")})
    emulator.reset()  # the provider is back and has forgotten the key
    admin_client.post("/admin/keys/openai/validate")
    emulator.set_mode("openai", mode)

    admin_client.post("/admin/keys/openai/validate")
    row = global_row(app)
    assert row.status == status and row.is_valid is False
    with pytest.raises(NoKeyAvailable):
        resolve(app)


# -- refusals before authentication --------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "answer", "words"),
    [
        ("openai", "blocked", "does not serve the country this server is in"),
        ("custom", "blocked", "does not serve the country this server is in"),
        ("openai", "ip_not_allowed", "IP allowlist"),
        ("custom", "ip_not_allowed", "IP allowlist"),
        ("anthropic", "blocked", "network edge refused the request"),
        ("gemini", "blocked", "not available here without billing"),
        ("azure_openai", "blocked", "network rules do not let this server in"),
        ("azure_openai", "local_auth_disabled", "key authentication turned off"),
    ],
)
def test_a_refusal_before_authentication_says_nothing_of_the_key(
    make_app, emulator, provider, answer, words
):
    # The provider has revoked this key, but a region, network or address block answers first.
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider)
    emulator.set_mode(provider, "blocked", answer=answer)

    html = page(validate(client, provider))
    row = dashboard_row(html, provider)
    assert badge(row) == "Not permitted"
    assert words in row and "says nothing about whether the key works" in row
    assert "refused the check before looking at your key" in html
    assert "key works but" not in html  # the flash for a key that got in
    stored = row_of(app, provider)
    assert stored.status == "forbidden" and stored.is_valid is None
    assert api_status(client, provider)["is_valid"] is None
