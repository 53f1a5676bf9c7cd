"""Every provider, every outcome: what it answers, how Keyhold reads it, what the user sees."""

from __future__ import annotations

import pytest

from tests.emulator import SPECS, USER_ENDPOINT
from tests.emulator_answers import openai_mask
from tests.fakekeys import near_misses
from tests.validation_helpers import (
    ALL,
    app_for,
    badge,
    closed_port,
    dashboard_row,
    page,
    row_of,
    signed_in,
    store_key,
    validate,
)

MODELS = {
    "openai": 3,
    "anthropic": 2,
    "gemini": 2,
    "azure_openai": 1,
    "mistral": 2,
    "groq": 2,
    "together": 2,
    "custom": 2,
}
#: providers whose plain check shows a key out of credit
QUOTA_VISIBLE = {"openrouter", "deepseek"}
#: ...and whose plain check shows the account's balance when there is credit (OpenRouter's
#: shows only the key's own cap: the account may still have none)
BALANCE_VISIBLE = {"deepseek"}
#: words from each provider's invalid-key answer that the user should read
INVALID_WORDS = {
    "openai": "Incorrect API key provided",
    "anthropic": "invalid x-api-key",
    "gemini": "API key not valid",
    "azure_openai": "invalid subscription key",
    "mistral": "Unauthorized",
    "groq": "Invalid API Key",
    "openrouter": "User not found.",
    "deepseek": "Authentication Fails",
    "xai": "Incorrect API key provided",
    "together": "Invalid API key provided",
    "cohere": "invalid api token",
    "huggingface": "Invalid credentials in Authorization header",
    "custom": "Incorrect API key provided",
}


@pytest.mark.parametrize("provider", ALL)
def test_valid_key(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.valid_key(provider))

    response = validate(client, provider)
    assert response.status_code == 200
    row = dashboard_row(page(response), provider)
    assert badge(row) == "Valid"
    assert "accepted your key" in page(response)
    if provider in MODELS:
        count = MODELS[provider]
        assert f"{count} model{'' if count == 1 else 's'}</li>" in row
    assert ("Quota not checked" in row) is (provider not in BALANCE_VISIBLE)
    stored = row_of(app, provider)
    assert stored.status == "valid" and stored.is_valid is True
    assert stored.last_validated is not None and stored.last_error is None
    assert len(stored.models) == MODELS.get(provider, 0)


@pytest.mark.parametrize("provider", ALL)
def test_invalid_key(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    key = store_key(app, emulator, provider)  # well-formed, unknown to the provider

    html = page(validate(client, provider))
    row = dashboard_row(html, provider)
    assert badge(row) == "Invalid"
    assert INVALID_WORDS[provider] in row
    assert "rejected your key" in html
    for secret in (key, openai_mask(key), f"****{key[-4:]}", f"{key[:2]}***{key[-2:]}"):
        assert secret not in html
    stored = row_of(app, provider)
    assert stored.status == "invalid" and stored.is_valid is False


@pytest.mark.parametrize("provider", ALL)
def test_malformed_key_is_refused_before_any_request(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    for key in near_misses(provider):  # almost right: one character off, a wrong prefix...
        data = {"api_key": key, **emulator.endpoint_config(provider)}
        response = client.post(f"/keys/{provider}", data=data)
        assert response.status_code == 400, key
        assert 'id="api_key-error"' in page(response)
        assert key not in page(response)
    assert emulator.received() == []
    assert row_of(app, provider) is None


DEEP = {"openai", "anthropic", "gemini", "groq", "together", "xai", "cohere", "mistral"}


@pytest.mark.parametrize("provider", sorted(QUOTA_VISIBLE))
def test_out_of_credit_shows_on_the_plain_check(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.register(provider, state="quota_exhausted"))
    row = dashboard_row(page(validate(client, provider)), provider)
    assert badge(row) == "Out of credit"
    assert "Deep check" not in row  # nothing to gain: the plain check already shows credit
    if provider == "openrouter":
        assert "Credit used: $100.00 of a $100.00 limit ($0.00 left)" in row
    else:
        assert "Balance: 0.00 CNY (cannot pay for requests)" in row
    stored = row_of(app, provider)
    assert stored.status == "quota_exceeded" and stored.is_valid is True
    assert stored.details["quota_checked"] is True


@pytest.mark.parametrize("provider", sorted(DEEP - {"mistral"}))
def test_out_of_credit_needs_the_deep_check(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.register(provider, state="quota_exhausted"))

    # The free listing says nothing about credit, and the dashboard says so.
    row = dashboard_row(page(validate(client, provider)), provider)
    assert badge(row) == "Valid" and "Quota not checked" in row
    assert "Deep check" in row and "billed to this key" in row
    assert [r.path for r in emulator.received(provider)] == [emulator_check_path(provider)]

    row = dashboard_row(page(validate(client, provider, deep=True)), provider)
    assert badge(row) == "Out of credit"
    assert "Quota not checked" not in row
    paths = [r.path for r in emulator.received(provider)]
    assert len(paths) == 3 and paths[-1] != emulator_check_path(provider)  # listing + inference
    stored = row_of(app, provider)
    assert stored.status == "quota_exceeded" and stored.details["quota_checked"] is True
    assert stored.details["deep_check_model"]


def test_mistral_credit_cannot_be_told_from_throttling(make_app, emulator):
    # Mistral answers a spent monthly limit with the same plain 429 as throttling
    # (vanna-ai/vanna#177), so the deep check leaves "valid" standing, credit unknown.
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "mistral", emulator.register("mistral", state="quota_exhausted"))
    row = dashboard_row(page(validate(client, "mistral", deep=True)), "mistral")
    assert badge(row) == "Valid" and "Quota not checked" in row
    assert "deep check on mistral-small-latest could not be completed" in row


def test_a_gateway_out_of_credit(make_app, emulator):
    app = app_for(make_app, "custom")
    client = signed_in(app)
    store_key(app, emulator, "custom", emulator.valid_key("custom"))
    emulator.set_mode("custom", "out_of_quota")
    row = dashboard_row(page(validate(client, "custom")), "custom")
    assert badge(row) == "Out of credit" and "exceeded your current quota" in row


@pytest.mark.parametrize("provider", ["azure_openai", "huggingface"])
def test_no_credit_to_check(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.register(provider))
    row = dashboard_row(page(validate(client, provider)), provider)
    assert badge(row) == "Valid" and "Quota not checked" in row
    assert "Deep check" not in row


@pytest.mark.parametrize("provider", ALL)
def test_throttled_check_keeps_the_last_known_validity(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.valid_key(provider))
    validate(client, provider)
    emulator.set_mode(provider, "throttled", retry_after=7)

    html = page(validate(client, provider))
    row = dashboard_row(html, provider)
    assert badge(row) == "Check throttled"
    assert "Provider asks to wait 7 s" in row
    assert "throttled the check" in html
    stored = row_of(app, provider)
    assert stored.status == "rate_limited" and stored.is_valid is True
    assert len(stored.models) == MODELS.get(provider, 0)  # the last listing is kept


@pytest.mark.parametrize("provider", ALL)
def test_provider_down(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.valid_key(provider))
    emulator.set_mode(provider, "down")

    html = page(validate(client, provider))
    row = dashboard_row(html, provider)
    assert badge(row) == "Provider error"
    assert "could not be checked" in html and "Invalid" not in row
    stored = row_of(app, provider)
    assert stored.status == "provider_error" and stored.is_valid is None


@pytest.mark.parametrize("provider", ALL)
def test_provider_too_slow(make_app, emulator, provider):
    app = app_for(make_app, provider, VALIDATION_TIMEOUT=0.4, VALIDATION_CONNECT_TIMEOUT=0.4)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.valid_key(provider))
    emulator.slow(provider, 1.5)

    row = dashboard_row(page(validate(client, provider)), provider)
    assert badge(row) == "Provider unreachable"
    assert "did not answer within 0.4 s" in row
    stored = row_of(app, provider)
    assert stored.status == "network_error" and stored.is_valid is None


@pytest.mark.parametrize("provider", ALL)
def test_connection_refused(make_app, emulator, provider):
    dead = f"http://127.0.0.1:{closed_port()}/{provider}"
    if provider in USER_ENDPOINT:
        app = app_for(make_app, provider)
        client = signed_in(app)
        store_key(app, emulator, provider, emulator.valid_key(provider), base_url=dead)
    else:
        app = make_app(PROVIDER_BASE_URLS={provider: dead})
        client = signed_in(app)
        store_key(app, emulator, provider, emulator.valid_key(provider))

    row = dashboard_row(page(validate(client, provider)), provider)
    assert badge(row) == "Provider unreachable"
    assert "refused the connection" in row
    assert row_of(app, provider).status == "network_error"
    assert emulator.received() == []


def emulator_check_path(provider: str) -> str:
    spec = SPECS[provider]
    return f"/{spec.prefix}{spec.base}{spec.check[1]}"
