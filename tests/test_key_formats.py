"""A key pasted into the wrong provider's form is refused before it is sent anywhere."""

from __future__ import annotations

import pytest

from tests.fakekeys import fake_key
from tests.validation_helpers import ALL, app_for, page, row_of, signed_in
from webapp.keys.inputs import key_problem
from webapp.providers.catalog import get_provider

#: (whose key, whose form) pairs the formats cannot tell apart, and why; every other pair is
#: refused. The custom provider takes whatever a gateway issues, so any key passes its check.
INDISTINGUISHABLE = {
    ("azure_openai", "mistral"): "Azure's 32 hex characters are also 32 letters and digits",
    **{(other, "custom"): "a gateway may issue keys of any shape" for other in ALL},
}


def post_key(client, emulator, provider: str, key: str):
    data = {"api_key": key, **emulator.endpoint_config(provider)}
    return client.post(f"/keys/{provider}", data=data)


@pytest.mark.parametrize("form", ALL)
def test_every_other_providers_key_is_refused_before_any_request(make_app, emulator, form):
    app = app_for(make_app, form)
    client = signed_in(app)
    for owner in ALL:
        if owner == form:
            continue
        key = fake_key(owner)
        if (owner, form) in INDISTINGUISHABLE:
            # Documented above: the format check lets it through, the provider decides.
            with app.app_context():
                assert key_problem(get_provider(form), key) is None, (owner, form)
            continue
        response = post_key(client, emulator, form, key)
        assert response.status_code == 400, (owner, form)
        assert 'id="api_key-error"' in page(response)
        assert key not in page(response)
    assert emulator.received() == []
    assert row_of(app, form) is None


@pytest.mark.parametrize(
    ("owner", "form", "words"),
    [
        ("anthropic", "openai", "looks like a key for Anthropic, not for OpenAI"),
        ("openrouter", "openai", "looks like a key for OpenRouter, not for OpenAI"),
        ("deepseek", "openai", "looks like a key for DeepSeek, not for OpenAI"),
        ("openai", "anthropic", "looks like a key for OpenAI, not for Anthropic"),
        ("groq", "xai", "looks like a key for Groq, not for xAI"),
    ],
)
def test_a_key_for_another_provider_is_named(make_app, emulator, owner, form, words):
    app = make_app()
    client = signed_in(app)
    assert words in page(post_key(client, emulator, form, fake_key(owner)))
    assert emulator.received() == []


@pytest.mark.parametrize(
    ("form", "key", "words"),
    [
        ("openai", "sk-admin-" + "a1B2" * 31, "This is an OpenAI admin key (sk-admin-)"),
        ("anthropic", "sk-ant-admin01-" + "a1B2" * 23 + "AA", "Anthropic Admin API key"),
        ("anthropic", "sk-ant-oat01-" + "a1B2" * 23 + "AA", "not an API key"),
        ("gemini", "ya29." + "a1B2" * 20, "Google OAuth access token"),
    ],
)
def test_a_key_that_cannot_run_models_is_refused_with_the_reason(
    make_app, emulator, form, key, words
):
    app = make_app()
    client = signed_in(app)
    response = post_key(client, emulator, form, key)
    assert response.status_code == 400 and words in page(response)
    assert emulator.received() == []


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-" + "a1B2" * 18 + "T3BlbkFJ" + "c3D4" * 18,  # project
        "sk-" + "a1B2c" * 4 + "T3BlbkFJ" + "e5F6g" * 4,  # legacy, 51 characters
        "sk-svcacct-" + "a1B2" * 39,  # service account
        "sk-None-" + "a1B2" * 12,
    ],
)
def test_every_kind_of_openai_inference_key_passes(app, key):
    with app.app_context():
        assert key_problem(get_provider("openai"), key) is None
