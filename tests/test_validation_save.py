"""Saving a key asks the provider first: a rejected key is not stored; an unchecked one says so."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.emulator import split_controls
from tests.fakekeys import fake_key
from tests.validation_helpers import (
    app_for,
    closed_port,
    dashboard_row,
    page,
    row_of,
    signed_in,
    store_key,
    validate,
)
from webapp.audit.models import AuditEvent
from webapp.extensions import db
from webapp.providers.catalog import get_provider
from webapp.providers.checks import app_checker


def audit_rows(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(db.select(AuditEvent).filter_by(action=action)).all()
        db.session.expunge_all()
        return list(rows)


@pytest.mark.parametrize("provider", ["openai", "gemini", "azure_openai", "custom"])
def test_a_valid_key_is_stored_as_valid(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    key = emulator.valid_key(provider)
    data = {"api_key": key, **emulator.endpoint_config(provider)}
    response = client.post(f"/keys/{provider}", data=data, follow_redirects=True)
    html = page(response)
    assert "key was added" in html and "accepted it" in html
    assert "Its credit was not checked." in html
    row = row_of(app, provider)
    assert row.status == "valid" and row.is_valid is True and row.models
    keyed, controls = split_controls(emulator.received(provider))
    assert len(keyed) == 1
    # A custom endpoint is asked once more, with a made-up key, which it refuses.
    assert len(controls) == (provider == "custom")
    [event] = audit_rows(app, "key.validate")
    assert event.details["status"] == "valid" and event.details["trigger"] == "save"


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "xai", "deepseek"])
def test_a_rejected_key_is_not_stored_and_the_old_one_stays(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    old = store_key(app, emulator, provider, emulator.valid_key(provider))
    before = row_of(app, provider)
    rejected = fake_key(provider)  # well-formed, unknown to the provider
    response = client.post(f"/keys/{provider}", data={"api_key": rejected})
    assert response.status_code == 400
    html = page(response)
    assert 'id="api_key-error"' in html
    assert "The provider said:" in html
    assert rejected not in html and rejected[-8:] not in html
    after = row_of(app, provider)
    assert (after.encrypted_key, after.key_hint, after.status) == (
        before.encrypted_key,
        before.key_hint,
        before.status,
    )
    assert old[-4:] in after.key_hint
    [event] = audit_rows(app, "key.validate")
    assert event.details["status"] == "invalid" and event.details["trigger"] == "save"
    assert rejected not in str(event.details) and "fingerprint" not in event.details
    assert not [e for e in audit_rows(app, "key.replace")]


def test_a_rejected_first_key_stores_nothing(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    response = client.post("/keys/groq", data={"api_key": "gsk_" + "A" * 52})
    assert response.status_code == 400
    assert "Invalid API Key" in page(response)
    assert row_of(app, "groq") is None


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("down", "provider_error", "could not answer properly"),
        ("close", "network_error", "closed the connection"),
        ("html", "provider_error", "without the JSON it sends"),
        ("garbage", "provider_error", "without the JSON it sends"),
        ("bad_gzip", "network_error", "could not be decoded"),
    ],
)
def test_an_unanswered_check_stores_the_key_and_says_so(make_app, emulator, mode, status, words):
    app = make_app()
    client = signed_in(app)
    emulator.set_mode("anthropic", mode)
    key = emulator.valid_key("anthropic")
    response = client.post("/keys/anthropic", data={"api_key": key}, follow_redirects=True)
    html = page(response)
    assert "Your Anthropic key was added. It could not be checked" in html
    assert words in html
    assert dashboard_row(html, "anthropic")
    row = row_of(app, "anthropic")
    assert row.status == status and row.is_valid is None


def test_an_unreachable_provider_stores_the_key_and_says_so(make_app, emulator):
    app = make_app(PROVIDER_BASE_URLS={"mistral": f"http://127.0.0.1:{closed_port()}/v1"})
    client = signed_in(app)
    response = client.post("/keys/mistral", data={"api_key": "A" * 32}, follow_redirects=True)
    assert "It could not be checked" in page(response)
    assert "refused the connection" in page(response)
    assert row_of(app, "mistral").status == "network_error"


def test_a_throttled_check_on_save_stores_the_key_unjudged(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    emulator.set_mode("together", "throttled")
    response = client.post(
        "/keys/together", data={"api_key": emulator.valid_key("together")}, follow_redirects=True
    )
    assert "Status: Check throttled." in page(response)
    row = row_of(app, "together")
    assert row.status == "rate_limited" and row.is_valid is None


def test_a_key_for_a_restricted_account_is_stored_with_its_status(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    key = emulator.register("openai", state="forbidden")
    response = client.post("/keys/openai", data={"api_key": key}, follow_redirects=True)
    assert "Status: Not permitted." in page(response)
    assert "Missing scopes" in page(response)
    row = row_of(app, "openai")
    assert row.status == "forbidden" and row.is_valid is True


def test_checking_a_key_leaves_the_time_it_was_stored(make_app, emulator):
    # updated_at says when the key was stored (the API: "when the key was last stored"); a
    # check, by hand or by the nightly revalidation, is not storing it.
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "groq", "gsk_" + "B" * 52)  # unknown to the provider
    stored = row_of(app, "groq")
    assert client.post("/keys/groq/validate").status_code == 302
    checked = row_of(app, "groq")
    assert checked.status == "invalid" and checked.status != stored.status
    assert checked.updated_at == stored.updated_at
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    assert row_of(app, "groq").updated_at > stored.updated_at


def saved_custom(make_app, emulator, mode: str, key: str, **settings):
    """A user who saved ``key`` for a custom endpoint that answers in ``mode``: the app, the
    browser, and the page the save ended on."""
    app = app_for(make_app, "custom", **settings)
    client = signed_in(app)
    emulator.set_mode("custom", mode)
    data = {"api_key": key, **emulator.endpoint_config("custom")}
    return app, client, page(client.post("/keys/custom", data=data, follow_redirects=True))


def test_a_server_that_checks_no_keys_does_not_make_any_key_valid(make_app, emulator):
    # A local model server or gateway without authentication lists its models for any key.
    app, client, html = saved_custom(make_app, emulator, "open", "made-up-by-the-user-1234")
    assert "accepted it" not in html and "its state is unknown" in html
    assert "a made-up key was accepted too" in html
    row = row_of(app, "custom")
    assert row.status == "provider_error" and row.is_valid is None
    keyed, controls = split_controls(emulator.received("custom"))
    assert len(keyed) == 1 and len(controls) == 1
    # Checked again from the dashboard: the same answer, not "valid".
    html = page(validate(client, "custom"))
    assert "could not be checked" in html and "accepted your key" not in html
    assert row_of(app, "custom").status == "provider_error"


def test_an_operators_gateway_that_checks_no_keys_does_not_make_any_key_valid(make_app, emulator):
    # PROVIDER_OPENAI_BASE_URL names a gateway in place of api.openai.com (here, as in every
    # test, the emulator): one that lists models for any key must not vouch for a mistyped one
    # unless the operator says it refuses keys as OpenAI does (the other tests say so).
    app = make_app(PROVIDER_BASE_URLS_CHECK_KEYS=False)
    client = signed_in(app)
    emulator.set_mode("openai", "open")
    typo = fake_key("openai")
    html = page(client.post("/keys/openai", data={"api_key": typo}, follow_redirects=True))
    assert "accepted it" not in html and "a made-up key was accepted too" in html
    row = row_of(app, "openai")
    assert row.status == "provider_error" and row.is_valid is None
    keyed, controls = split_controls(emulator.received("openai"))
    assert len(keyed) == 1 and len(controls) == 1


def test_a_made_up_key_is_sent_only_where_a_key_let_in_may_say_nothing(make_app):
    openai, custom = get_provider("openai"), get_provider("custom")
    with make_app(PROVIDER_BASE_URLS_CHECK_KEYS=False).app_context():
        checker = app_checker()
    assert checker.unvouched(openai)  # another server in its place (here the emulator)
    assert not replace(checker, base_urls={}).unvouched(openai)  # its own host checks keys
    own_host = replace(checker, base_urls={"openai": openai.base_url + "/"})
    assert not own_host.unvouched(openai)  # the same host, written with a slash
    vouched = replace(checker, base_urls_check_keys=True)
    assert not vouched.unvouched(openai)  # the operator says it refuses keys as OpenAI does
    assert vouched.unvouched(custom) and replace(checker, base_urls={}).unvouched(custom)


def test_a_slow_server_that_checks_no_keys_is_not_taken_at_its_word(make_app, emulator):
    # The made-up key's answer does not come in time: no clear refusal, so not "valid".
    emulator.slow("custom", 1.3)
    app, _, html = saved_custom(
        make_app, emulator, "open", "anything-at-all-0000", VALIDATION_TIMEOUT=2
    )
    assert "accepted it" not in html and "did not refuse a made-up one either" in html
    row = row_of(app, "custom")
    assert row.status == "provider_error" and row.is_valid is None


def test_a_gateway_that_refuses_other_keys_with_403_has_its_keys_judged(make_app, emulator):
    app, _, html = saved_custom(make_app, emulator, "forbid_others", emulator.valid_key("custom"))
    assert "accepted it" in html
    assert row_of(app, "custom").status == "valid"
    assert len(split_controls(emulator.received("custom"))[1]) == 1


def test_a_wrong_key_at_such_a_gateway_is_not_taken_for_a_working_one(make_app, emulator):
    # Its 403 to a mistyped key is the 403 it gives a made-up one: not "works, but may not
    # do this", and not "invalid" either (a gateway refusing this address answers the same).
    app, _, html = saved_custom(make_app, emulator, "forbid_others", "mistyped-key-0000-0000")
    assert "works but is not allowed" not in html
    assert "refused the key just as it refuses a made-up one" in html
    row = row_of(app, "custom")
    assert row.status == "provider_error" and row.is_valid is None
    assert len(split_controls(emulator.received("custom"))[1]) == 1


def test_a_key_such_a_gateway_refuses_in_its_own_words_may_not_do_this(make_app, emulator):
    key = emulator.register("custom", state="forbidden")
    app, _, _ = saved_custom(make_app, emulator, "forbid_others", key)
    row = row_of(app, "custom")
    assert row.status == "forbidden" and row.is_valid is True
