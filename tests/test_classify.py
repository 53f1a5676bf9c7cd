"""Reading provider answers: the markers that override the status code, and scrubbing."""

from __future__ import annotations

import json

import pytest

from tests.emulator import BOMB_SIZE, SPECS
from tests.emulator_answers import openai_mask
from tests.fakekeys import fake_key
from tests.validation_helpers import app_for
from webapp.providers.catalog import get_provider
from webapp.providers.checks import app_checker, deep_check_model
from webapp.providers.classify import MAX_MESSAGE, REDACTED, classify, scrub
from webapp.providers.client import MAX_BODY_BYTES, Answer, Outgoing, ProviderHTTP


def check(app, emulator, provider: str, key: str, *, deep: bool = False):
    config = emulator.endpoint_config(provider)
    with app.app_context():
        return app_checker().check(get_provider(provider), key, config, deep=deep)


@pytest.mark.parametrize(
    ("provider", "state", "status", "words"),
    [
        ("openai", "forbidden", "forbidden", "Missing scopes"),
        ("openai", "revoked", "invalid", "has been deactivated"),
        ("anthropic", "forbidden", "forbidden", "Permission denied"),
        ("anthropic", "revoked", "invalid", "organization has been disabled"),
        ("gemini", "forbidden", "forbidden", "may not use the Gemini API"),
        ("gemini", "revoked", "invalid", "suspended"),
        ("gemini", "leaked", "invalid", "reported as leaked: create a new one"),
        ("groq", "revoked", "invalid", "restricted the organisation"),
        ("xai", "revoked", "invalid", "xAI has blocked this key"),
        ("xai", "disabled", "invalid", "disabled in the xAI console"),
        ("xai", "team_blocked", "invalid", "blocked the team this key belongs to"),
        ("cohere", "revoked", "invalid", "has expired"),
        ("cohere", "disowned", "invalid", "rejected the key"),
    ],
)
def test_states_with_answers_of_their_own(make_app, emulator, provider, state, status, words):
    # Each of these comes with a status code that alone would say something else
    # (a 400 for a revoked organisation, a 200 for a blocked xAI key, a 401 for a scope).
    app = app_for(make_app, provider)
    result = check(app, emulator, provider, emulator.register(provider, state=state))
    assert result.status == status
    assert words in result.describe()


def test_an_anthropic_billing_error_is_no_credit(make_app, emulator):
    app = app_for(make_app, "anthropic")
    key = emulator.register("anthropic", state="billing_due")
    deep = check(app, emulator, "anthropic", key, deep=True)
    assert deep.status == "quota_exceeded" and deep.quota_checked is True
    assert "billing details" in deep.describe()


def test_a_mistral_refusal_says_a_new_key_may_not_be_active_yet(make_app, emulator):
    # Mistral answers a key created minutes ago, and a Codestral-only key, with the same 401
    # as a wrong key: the verdict stands, with what to try before giving up on the key.
    app = make_app()
    result = check(app, emulator, "mistral", fake_key("mistral"))
    assert result.status == "invalid"
    assert "may not be active yet" in result.describe() and "Codestral" in result.describe()
    assert "Unauthorized" in result.describe()  # and the provider's own word


def test_a_read_only_hugging_face_token_is_valid_and_says_its_role(make_app, emulator):
    app = make_app()
    result = check(
        app, emulator, "huggingface", emulator.register("huggingface", state="read_only")
    )
    assert result.status == "valid" and result.details["role"] == "read"


@pytest.mark.parametrize("provider", sorted(SPECS))
def test_a_missing_key_answer_is_not_a_verdict_on_the_key(emulator, provider):
    # Keyhold always sends a key; if the provider says none arrived, something in between
    # removed it, and the key must not be called invalid for it.
    spec = SPECS[provider]
    query = "?api-version=2024-10-21" if provider == "azure_openai" else ""
    headers = {"anthropic-version": "2023-06-01"} if provider == "anthropic" else {}
    url = f"{emulator.base_url(provider)}{spec.check[1]}{query}"
    http = ProviderHTTP(connect_timeout=1, timeout=2, allow_private=True)
    try:
        answer = http.send(Outgoing(spec.check[0], url, headers))
    finally:
        http.close()
    entry = get_provider(provider)
    result = classify(entry, answer, key="", expect=entry.check.expect)
    if provider in ("mistral", "groq", "together", "xai"):
        # Their missing-key answer is their invalid-key answer ([INF] in providers.md).
        assert result.status == "invalid"
    else:
        assert result.status == "provider_error", result
        assert "no key reached it" in result.describe()


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("html", "provider_error", "without the JSON"),
        ("garbage", "provider_error", "without the JSON"),
        ("close", "network_error", "closed the connection"),
        ("down", "provider_error", "HTTP 503"),
        ("bad_gzip", "network_error", "could not be decoded"),
        ("brotli", "network_error", "could not be decoded"),
        ("gzip_bomb", "network_error", "oversized answer"),
    ],
)
def test_answers_that_are_not_the_provider_speaking(make_app, emulator, mode, status, words):
    app = make_app()
    key = emulator.valid_key("groq")
    emulator.set_mode("groq", mode)
    result = check(app, emulator, "groq", key)
    assert result.status == status and words in result.describe()


@pytest.mark.parametrize("coding", ["", "deflate", "raw_deflate"])
def test_a_compressed_answer_is_read(make_app, emulator, coding):
    # Providers compress their answers when asked; Keyhold asks for gzip or deflate only.
    app = make_app()
    emulator.set_mode("openai", "compressed", coding=coding)
    result = check(app, emulator, "openai", emulator.valid_key("openai"))
    assert result.status == "valid" and result.models
    assert emulator.received("openai")[-1].headers["accept-encoding"] == "gzip, deflate"


def test_a_compressed_answer_cannot_fill_the_memory(make_app, emulator):
    # A few hundred bytes that inflate to BOMB_SIZE: the check stops at the cap on an answer
    # while inflating, instead of inflating first and measuring afterwards.
    import tracemalloc

    app = make_app()
    key = emulator.valid_key("groq")
    emulator.set_mode("groq", "gzip_bomb")
    check(app, emulator, "groq", key)  # the bomb is built once, outside the measurement
    tracemalloc.start()
    try:
        result = check(app, emulator, "groq", key)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.status == "network_error" and "oversized" in result.describe()
    assert BOMB_SIZE >= 8 * MAX_BODY_BYTES and peak < 3 * MAX_BODY_BYTES


@pytest.mark.parametrize("status", [200, 401])
def test_an_answer_of_countless_small_values_is_not_read_into_memory(status):
    # Within the byte cap, and a few kilobytes gzipped: read as JSON it would be millions
    # of objects, some thirty times the cap in memory, from any custom endpoint a user names.
    import tracemalloc

    body = b'{"data":[' + b",".join([b"{}"] * (MAX_BODY_BYTES // 3 - 4)) + b"]}"
    assert len(body) <= MAX_BODY_BYTES
    answer = Answer(status, {"content-type": "application/json"}, body, 5)
    tracemalloc.start()
    try:
        result = classify(get_provider("custom"), answer, key=KEY, expect="data")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.status == "provider_error" and result.is_valid is None  # not a verdict
    assert "more values than Keyhold reads" in result.describe()
    assert peak < MAX_BODY_BYTES // 4


def test_a_long_model_list_is_still_read():
    models = [{"id": f"org/model-{i}", "object": "model", "created": i} for i in range(5000)]
    body = json.dumps({"object": "list", "data": models}).encode()
    result = classify(get_provider("custom"), Answer(200, {}, body, 5), key=KEY, expect="data")
    assert result.status == "valid" and len(result.models) > 100


def test_a_200_that_is_not_the_providers_answer_is_not_valid(make_app, emulator):
    # A 200 from the wrong service (here an override that points OpenAI at Together,
    # whose list is a bare array) lacks OpenAI's fields, so it proves nothing.
    app = make_app(PROVIDER_BASE_URLS={"openai": emulator.base_url("together")})
    key = emulator.register("together", key=emulator.valid_key("openai"))
    result = check(app, emulator, "openai", key)
    assert result.status == "provider_error" and result.http_status == 200
    assert "did not look like the provider's" in result.describe()


def test_the_wrong_base_url_is_a_provider_error(make_app, emulator):
    app = make_app(PROVIDER_BASE_URLS={"openai": emulator.url + "/openai/v9"})
    result = check(app, emulator, "openai", emulator.valid_key("openai"))
    assert result.status == "provider_error" and result.http_status == 404


def test_azure_without_an_api_version_says_so(make_app, emulator):
    app = app_for(make_app, "azure_openai")
    key = emulator.valid_key("azure_openai")
    with app.app_context():
        result = app_checker().check(
            get_provider("azure_openai"), key, {"endpoint": emulator.base_url("azure_openai")}
        )
    assert result.status == "provider_error"
    assert "Check the endpoint and the API version." in result.describe()


@pytest.mark.parametrize("provider", ["together", "gemini", "groq", "cohere"])
def test_throttling_and_spent_credit_are_told_apart(make_app, emulator, provider):
    # Together labels its 429 "credit_limit"; Gemini says RESOURCE_EXHAUSTED for both
    # (per minute vs per day); Groq's daily token cap and Cohere's 402 are credit.
    app = make_app()
    key = emulator.valid_key(provider)
    emulator.set_mode(provider, "throttled")
    assert check(app, emulator, provider, key).status == "rate_limited"
    emulator.set_mode(provider, "out_of_quota")
    spent = check(app, emulator, provider, key)
    assert spent.status == "quota_exceeded"
    if provider in ("gemini", "groq"):  # a daily cap: it comes back by itself
        assert "daily quota" in spent.describe() and "credit" not in spent.describe()
    else:
        assert "no credit left" in spent.describe()


def test_a_deep_check_finds_what_the_listing_cannot(make_app, emulator):
    app = make_app()
    key = emulator.register("openai", state="quota_exhausted")
    listing = check(app, emulator, "openai", key)
    assert listing.status == "valid" and listing.quota_checked is False
    deep = check(app, emulator, "openai", key, deep=True)
    assert deep.status == "quota_exceeded" and deep.quota_checked is True
    assert deep.models == listing.models  # the listing's models survive the deep check


def test_an_anthropic_spend_limit_reached_is_no_credit_not_a_provider_error(make_app, emulator):
    # Anthropic answers a Console spend limit with a 400 invalid_request_error, the status
    # and type of a malformed request: only its words tell that the key is out of budget.
    app = app_for(make_app, "anthropic")
    key = emulator.register("anthropic", state="spend_limited")
    assert check(app, emulator, "anthropic", key).status == "valid"
    deep = check(app, emulator, "anthropic", key, deep=True)
    assert deep.status == "quota_exceeded" and deep.quota_checked is True
    assert "spend limit" in deep.describe() and "2027-01-01" in deep.describe()


def test_a_deep_check_prefers_a_model_the_key_has(make_app, emulator):
    app = make_app()
    check(app, emulator, "anthropic", emulator.valid_key("anthropic"), deep=True)
    inference = emulator.received("anthropic")[-1]
    assert json.loads(inference.body)["model"] == "claude-haiku-4-5-20251001"


KEY = "sk-proj-" + "Ab3dEf6h" * 9 + "T3BlbkFJ" + "Zy9x" * 10


@pytest.mark.parametrize(
    "message",
    [
        f"Incorrect API key provided: {KEY}.",
        f"Incorrect API key provided: {openai_mask(KEY)}.",
        f"Your api key: ****{KEY[-4:]} is invalid",
        f"Incorrect API key provided: {KEY[:2]}***{KEY[-2:]}.",
        f"label {KEY[:12]}...{KEY[-3:]}",
        f"part of it: {KEY[20:40]}",
        f"url-encoded: key%3D{KEY}",
        f'json: {{"key":"{KEY}"}}',
        f"unknown tenant {KEY.lower()}",  # echoed in another case
        f"UNKNOWN TENANT {KEY.upper()}",
        f"part of it: {KEY[20:40].lower()}",
        f"label {KEY[:12].upper()}...{KEY[-3:].upper()}",
    ],
)
def test_scrub_removes_the_key_and_its_masked_forms(message):
    cleaned = scrub(message, KEY).casefold()
    assert REDACTED.casefold() in cleaned
    for form in (KEY, openai_mask(KEY), KEY[20:40], KEY[-4:] + " is", KEY[:12] + "..."):
        assert form.casefold() not in cleaned


def test_a_redirect_to_a_host_named_after_the_key_keeps_the_key_out_of_the_note():
    # A URL's host name is lower-cased when it is read: the key must go in any case.
    key = "gsk_" + "AbCdEfGhIjKlMn" * 3 + "OpQrStUvWx"
    answer = Answer(302, {"location": f"https://{key}.example/"}, b"", 1)
    result = classify(get_provider("groq"), answer, key=key, expect="data")
    assert result.status == "provider_error" and "redirected" in result.describe()
    assert key.casefold()[4:20] not in result.describe().casefold()


@pytest.mark.parametrize("key", ["Tok3n,Ab9xQ;Zr7Lm,Pq2Ws;Kd8Vn", "Ab(9x)Q[Zr]7L{mP}q2'W\"s<K>d8V"])
def test_a_cut_echo_of_a_key_with_punctuation_is_scrubbed(key):
    # A custom gateway's key may hold any printable character, some of which split words.
    said = scrub(f"Invalid API key: {key[:-2]} (check it)", key)
    assert said == f"Invalid API key: {REDACTED} (check it)"


def _texts_given_to(monkeypatch, name: str) -> list[str]:
    """The texts scrub hands to its helper ``name``, collected as it runs."""
    from webapp.providers import classify as module

    looked_at: list[str] = []
    original = getattr(module, name)

    def counted(text: str, key: str):
        looked_at.append(text)
        return original(text, key)

    monkeypatch.setattr(module, name, counted)
    return looked_at


def test_scrub_reads_only_the_start_of_a_message_whose_words_are_far_apart(monkeypatch):
    looked_at = _texts_given_to(monkeypatch, "_runs_of_key")
    key = "Tok3n,Ab9xQ;Zr7Lm,Pq2Ws;Kd8Vn"
    said = scrub(f"{key[:-1]} " + "(" * 5_000_000 + key[:-1], key)
    assert said.startswith(f"{REDACTED} (((") and len(said) == MAX_MESSAGE
    assert sum(map(len, looked_at)) <= 2 * MAX_MESSAGE


def test_scrub_leaves_ordinary_messages_alone():
    message = "Rate limit reached... Please try again in 20s. See https://platform.openai.com."
    assert scrub(message, KEY) == message
    assert len(scrub("x" * 5000, KEY)) <= 300


def test_scrub_reads_a_huge_message_only_as_far_as_it_shows_it(monkeypatch):
    # Megabytes of words from a custom endpoint (whoever runs it): only the words that fit in
    # the shown message are looked at for the key, and only as far as they could be shown.
    looked_at = _texts_given_to(monkeypatch, "_key_fragment_in")
    for message in (
        f"Incorrect key {KEY[5:30]}: " + "try again " * 400_000,
        f"Incorrect key {KEY[5:30]}-" + "x" * 4_000_000 + KEY,  # one word of megabytes
    ):
        looked_at.clear()
        cleaned = scrub(message, KEY)
        assert cleaned.startswith(f"Incorrect key {REDACTED}") and len(cleaned) <= 300
        assert KEY[5:30] not in cleaned and KEY[-12:] not in cleaned
        assert len(looked_at) < 100 and sum(map(len, looked_at)) < 2_000


DEEPSEEK_KEY = "sk-" + "0123456789abcdef" * 2


def test_a_key_echoed_as_a_name_in_kept_details_is_not_stored():
    """DeepSeek's balance entries are kept in the row's details: an echoed key used as an
    entry's name (a gateway in between, say) must not come along, whole or cut at 64."""
    long_key = DEEPSEEK_KEY + "x" * 60
    for key in (DEEPSEEK_KEY, long_key):
        entry = {"currency": "USD", "total_balance": "1.00", key: "echoed", "granted": "0"}
        body = {"is_available": True, "balance_infos": [entry]}
        answer = Answer(200, {}, json.dumps(body).encode(), 3)
        result = classify(get_provider("deepseek"), answer, key=key, expect="is_available")
        stored = json.dumps(dict(result.details))
        assert result.status == "valid"
        assert key[:24] not in stored
        assert '"total_balance": "1.00"' in stored and '"granted": "0"' in stored


def test_classify_ignores_a_body_that_is_not_json():
    answer = Answer(401, {}, b"", 5)
    result = classify(get_provider("mistral"), answer, key=KEY, expect="data")
    assert result.status == "invalid"  # Mistral's bodiless 401 (continuedev/continue#10277)


@pytest.mark.parametrize(
    "message",
    [
        "Access denied due to Virtual Network/Firewall rules.",
        "Public access is disabled. Please configure private endpoint.",
        "Traffic is not from an approved private endpoint.",
    ],
)
def test_an_azure_network_refusal_is_not_a_verdict_on_the_key(message):
    # Azure's network rules answer 403 before the key is looked at: a revoked key behind a
    # private endpoint must not come out of it marked valid.
    body = json.dumps({"error": {"code": "403", "message": message}}).encode()
    answer = Answer(403, {"content-type": "application/json"}, body, 5)
    entry = get_provider("azure_openai")
    result = classify(entry, answer, key=KEY, expect=entry.check.expect)
    assert result.is_valid is None and not result.key_judged


def test_a_stored_url_the_client_cannot_encode_is_a_failed_request_not_a_crash():
    # A host name IDNA refuses, stored before such names were refused when entered.
    from webapp.providers.client import NoAnswer

    http = ProviderHTTP(connect_timeout=1, timeout=2, allow_private=False)
    try:
        with pytest.raises(NoAnswer) as failed:
            http.send(Outgoing("GET", "https://xn--a.com/v1/models", {}, user_endpoint=True))
    finally:
        http.close()
    assert failed.value.reason == "protocol"
    assert "failed before an answer came back" in failed.value.message


@pytest.mark.parametrize("mode", ["down", "throttled"])
def test_a_check_that_failed_saw_no_credit(make_app, emulator, mode):
    # DeepSeek's check shows the balance, but only when it answers about the key.
    app = make_app()
    key = emulator.valid_key("deepseek")
    emulator.set_mode("deepseek", mode)
    result = check(app, emulator, "deepseek", key)
    assert result.status in ("provider_error", "rate_limited")
    assert result.quota_checked is False
    emulator.set_mode("deepseek", None)
    assert check(app, emulator, "deepseek", key).quota_checked is True


@pytest.mark.parametrize(
    ("provider", "listed", "chosen"),
    [
        # Listed in no fixed order beside models that share the name but do not chat.
        ("openai", ["gpt-4o-mini-tts", "gpt-4o-mini-transcribe", "gpt-4o-mini"], "gpt-4o-mini"),
        (
            "openai",
            ["gpt-4o-mini-realtime-preview", "gpt-4o-mini-2024-07-18"],
            "gpt-4o-mini-2024-07-18",
        ),
        ("gemini", ["gemini-2.0-flash-live-001", "gemini-2.0-flash-001"], "gemini-2.0-flash-001"),
        ("anthropic", ["claude-3-5-haiku-20241022"], "claude-3-5-haiku-20241022"),
        ("openai", ["gpt-4o-mini-tts"], "gpt-4o-mini"),  # nothing better known: the first
    ],
)
def test_the_deep_check_asks_the_chat_model_not_a_namesake(provider, listed, chosen):
    deep = get_provider(provider).deep_check
    assert deep_check_model(deep, listed) == chosen
