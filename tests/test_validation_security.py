"""Where a key may go during a check, and where it must never show up."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
from sqlalchemy import text

from tests.conftest import PASSWORD
from tests.emulator import SPECS, Emulator, split_controls
from tests.emulator_answers import OPENROUTER, Reply, openai_mask
from tests.validation_helpers import (
    ALL,
    api_status,
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
from webapp.extensions import db
from webapp.providers.client import NoAnswer, Outgoing, ProviderHTTP
from webapp.providers.endpoints import is_public_address

#: header -> how the value carries the key, per the providers' documentation
DOCUMENTED = {
    "anthropic": ("x-api-key", "{key}"),
    "gemini": ("x-goog-api-key", "{key}"),
    "azure_openai": ("api-key", "{key}"),
}


@pytest.fixture
def elsewhere():
    """A second server on another port: the "other host" a redirect points to."""
    server = Emulator().start()
    yield server
    server.stop()


@pytest.mark.parametrize("provider", ALL)
def test_the_key_goes_only_in_the_documented_header(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    key = store_key(app, emulator, provider, emulator.valid_key(provider))
    validate(client, provider)

    keyed, controls = split_controls(emulator.received())
    [request] = keyed  # one request, to this provider's emulated host
    spec = SPECS[provider]
    assert request.provider == provider
    assert (request.method, request.path) == (
        spec.check[0],
        f"/{spec.prefix}{spec.base}{spec.check[1]}",
    )
    header, form = DOCUMENTED.get(provider, ("authorization", "Bearer {key}"))
    assert request.headers[header] == form.format(key=key)
    carriers = [name for name, value in request.headers.items() if key in value]
    assert carriers == [header]
    for place in (request.raw_target, request.body.decode(), quote(request.raw_target)):
        assert key not in place and quote(key, safe="") not in place
    if provider == "anthropic":
        assert request.headers["anthropic-version"] == "2023-06-01"
    if provider == "azure_openai":
        assert request.query["api-version"] == ["2024-10-21"]
    # After a success, a server that may check no keys is asked with a made-up one, once.
    assert len(controls) == (provider == "custom")
    for control in controls:
        assert (control.method, control.path) == (request.method, request.path)
        assert key not in repr(control)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "azure_openai", "custom"])
def test_a_deep_check_sends_the_key_the_same_way(make_app, emulator, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    key = store_key(app, emulator, provider, emulator.valid_key(provider))
    row = dashboard_row(page(validate(client, provider, deep=True)), provider)
    header, form = DOCUMENTED.get(provider, ("authorization", "Bearer {key}"))
    requests, _ = split_controls(emulator.received())
    for request in requests:
        assert request.provider == provider
        assert request.headers[header] == form.format(key=key)
        assert [name for name, value in request.headers.items() if key in value] == [header]
        assert key not in request.raw_target and key.encode() not in request.body
    if provider in ("azure_openai", "custom"):
        # No deep check is offered (no cheap inference to ask for): the plain check runs once.
        assert [(r.method, r.body) for r in requests] == [("GET", b"")]
        assert "Quota not checked" in row and "Deep check" not in row
    else:
        assert "Quota not checked" not in row
        listing, inference = requests
        assert (listing.method, inference.method) == ("GET", "POST")
        body = json.loads(inference.body)  # one token, no more
        assert body.get("max_tokens", body.get("generationConfig", {}).get("maxOutputTokens")) == 1


@pytest.mark.parametrize("provider", ALL)
def test_a_redirect_to_another_host_does_not_carry_the_key(make_app, emulator, elsewhere, provider):
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.valid_key(provider))
    emulator.set_mode(provider, "redirect", location=f"{elsewhere.url}/collect")

    row = dashboard_row(page(validate(client, provider)), provider)
    assert badge(row) == "Provider error"
    assert "does not follow redirects" in row
    assert elsewhere.received() == []
    assert len(emulator.received()) == 1


def test_a_redirect_no_url_parser_reads_is_a_provider_error(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openai", emulator.valid_key("openai"))
    emulator.set_mode("openai", "redirect", location="http://[not-an-address")
    row = dashboard_row(page(validate(client, "openai")), "openai")
    assert badge(row) == "Provider error" and "another address" in row


@pytest.mark.parametrize("provider", ["openai", "custom"])
def test_json_nested_past_any_parser_is_a_provider_error(make_app, emulator, provider):
    # A server anyone can point a custom endpoint at may answer anything at all.
    app = app_for(make_app, provider)
    client = signed_in(app)
    store_key(app, emulator, provider, emulator.valid_key(provider))
    emulator.set_mode(provider, "nested")
    row = dashboard_row(page(validate(client, provider)), provider)
    assert badge(row) == "Provider error"
    saved = client.post(
        f"/keys/{provider}",
        data={"api_key": emulator.valid_key(provider), **emulator.endpoint_config(provider)},
    )
    assert saved.status_code == 302
    assert row_of(app, provider).status == "provider_error"


def test_a_fact_nested_deep_in_a_providers_answer_is_not_a_crash(make_app, emulator, monkeypatch):
    # JSON a parser reads (500 levels) where a fact is kept: OpenRouter's limit, say, from a
    # broken gateway in between. The key is judged; the odd value is not kept.
    deep = "[" * 500 + "]" * 500

    def nested(key: str) -> Reply:
        body = f'{{"data": {{"label": "x", "limit": {deep}, "usage": 1, "is_free_tier": false}}}}'
        return Reply(200, body, raw=True)

    monkeypatch.setitem(OPENROUTER, "valid", nested)
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "openrouter", emulator.valid_key("openrouter"))
    row = dashboard_row(page(validate(client, "openrouter")), "openrouter")
    assert badge(row) == "Valid"
    assert client.post("/api/api-keys/validate/openrouter", json={}).status_code == 200
    assert api_status(client, "openrouter")["facts"] == {"usage": 1, "is_free_tier": False}
    assert "[[[[[" not in json.dumps(row_of(app, "openrouter").details)


def test_a_redirect_on_save_does_not_carry_the_key_either(make_app, emulator, elsewhere):
    app = make_app()
    client = signed_in(app)
    emulator.set_mode("openai", "redirect", location=f"{elsewhere.url}/v1/models")
    response = client.post("/keys/openai", data={"api_key": emulator.valid_key("openai")})
    assert response.status_code == 302
    assert elsewhere.received() == []
    assert row_of(app, "openai").status == "provider_error"


# -- user-given endpoints ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "field", "url", "message"),
    [
        ("custom", "base_url", "http://llm.example.com/v1", "must start with https://"),
        ("azure_openai", "endpoint", "http://contoso.openai.azure.com", "must start with https://"),
        ("custom", "base_url", "https://127.0.0.1:8443/v1", "private network"),
        ("custom", "base_url", "https://localhost/v1", "private network"),
        ("custom", "base_url", "https://LOCALHOST./v1", "private network"),
        ("custom", "base_url", "https://127.1/v1", "private network"),
        ("custom", "base_url", "https://2130706433/v1", "private network"),
        ("custom", "base_url", "https://0x7f.1/v1", "private network"),
        ("custom", "base_url", "https://[::ffff:127.0.0.1]/v1", "private network"),
        ("custom", "base_url", "https://[2002:7f00:1::]/v1", "private network"),  # 6to4
        ("custom", "base_url", "https://[64:ff9b::a00:1]/v1", "private network"),  # NAT64
        ("custom", "base_url", "https://[::7f00:1]/v1", "private network"),  # IPv4-compatible
        ("custom", "base_url", "https://[::808:808]/v1", "private network"),  # ...even public
        ("custom", "base_url", "https://[::ffff:0:7f00:1]/v1", "private network"),  # SIIT
        ("custom", "base_url", "https://[64:ff9b:1::a00:1]/v1", "private network"),  # local NAT64
        ("azure_openai", "endpoint", "https://[64:ff9b:1:808:808::]", "private network"),
        ("custom", "base_url", "https://[fd00::1]/v1", "private network"),
        ("custom", "base_url", "https://[fec0::1]/v1", "private network"),  # site-local
        ("custom", "base_url", "https://[3fff::1]/v1", "private network"),  # documentation
        ("custom", "base_url", "https://xn--a.com/v1", "host name cannot be used"),  # bad IDNA
        ("azure_openai", "endpoint", "https://xn--.openai.azure.com", "host name cannot be used"),
        ("custom", "base_url", "https://192.168.1.20/v1", "private network"),
        ("azure_openai", "endpoint", "https://10.1.2.3", "private network"),
        ("azure_openai", "endpoint", "https://169.254.169.254", "private network"),
        ("azure_openai", "endpoint", "https://printer.local", "private network"),
    ],
)
def test_user_endpoints_must_be_public_https_by_default(
    make_app, emulator, provider, field, url, message
):
    app = make_app()
    client = signed_in(app)
    data = {"api_key": emulator.valid_key(provider), field: url, "api_version": "2024-10-21"}
    response = client.post(f"/keys/{provider}", data=data)
    assert response.status_code == 400
    assert message in page(response) and f'id="{field}-error"' in page(response)
    assert emulator.received() == []
    assert row_of(app, provider) is None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("::7f00:1", False),  # IPv4-compatible loopback
        ("::a9fe:a9fe", False),  # IPv4-compatible link-local (cloud metadata)
        ("::808:808", False),  # IPv4-compatible is deprecated: no public service uses it
        ("::ffff:0:7f00:1", False),  # SIIT
        ("::ffff:0:808:808", False),
        ("64:ff9b:1::7f00:1", False),  # local-use NAT64: its translator is on a private network
        ("64:ff9b:1:808:808::", False),
        ("fec0::8", False),  # site-local, which some Python versions call global
        ("3fff:0:1::8", False),  # documentation prefix of RFC 9637
        ("::ffff:808:808", True),  # IPv4-mapped and well-known NAT64 of a public address
        ("64:ff9b::808:808", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_ipv6_forms_that_carry_an_ipv4_address(address, public):
    # The same judgement guards the URL a user enters and every address Keyhold connects to.
    assert is_public_address(address) is public


def test_a_stored_loopback_endpoint_is_refused_once_the_operator_disallows_it(make_app, emulator):
    # Stored while private endpoints were allowed; checked after they no longer are.
    permissive = app_for(make_app, "azure_openai")
    signed_in(permissive)
    store_key(permissive, emulator, "azure_openai", emulator.valid_key("azure_openai"))
    strict = make_app(ALLOW_HTTP_ENDPOINTS=True)
    client = strict.test_client()
    client.post("/auth/login", data={"email": "alice@example.com", "password": PASSWORD})

    row = dashboard_row(page(validate(client, "azure_openai")), "azure_openai")
    assert badge(row) == "Provider unreachable"
    assert "private network addresses are not allowed" in row
    assert emulator.received() == []


def test_the_connect_time_guard_refuses_names_that_resolve_to_loopback(emulator):
    # "localhost" passes no static check here: the guard sees the address it resolves to.
    port = emulator.server.server_address[1]
    url = f"http://localhost:{port}/custom/v1/models"
    request = Outgoing("GET", url, {"Authorization": "Bearer gw-secret-value-123"}, {}, None, True)
    guarded = ProviderHTTP(connect_timeout=1, timeout=2, allow_private=False)
    try:
        with pytest.raises(NoAnswer) as refused:
            guarded.send(request)
    finally:
        guarded.close()
    assert refused.value.reason == "blocked"
    assert "local or private network address" in refused.value.message
    assert emulator.received() == []

    # The same request is made when the operator allows private endpoints...
    allowing = ProviderHTTP(connect_timeout=1, timeout=2, allow_private=True)
    try:
        assert allowing.send(request).status == 401
    finally:
        allowing.close()
    # ...and a catalogue host (an operator's override) is never subject to the guard.
    trusted = ProviderHTTP(connect_timeout=1, timeout=2, allow_private=False)
    try:
        fixed = Outgoing("GET", url, {"Authorization": "Bearer gw-secret-value-123"})
        assert trusted.send(fixed).status == 401
    finally:
        trusted.close()
    assert len(emulator.received()) == 2


# -- the key is nowhere --------------------------------------------------------------------


def _everything_written(app) -> str:
    with app.app_context():
        db.session.remove()
        dump = []
        for table in db.metadata.sorted_tables:
            rows = db.session.execute(text(f"SELECT * FROM {table.name}"))
            dump.extend(str(tuple(row)) for row in rows)
        return "\n".join(dump)


def _forms_of(key: str) -> list[str]:
    return [
        key,
        quote(key, safe=""),
        openai_mask(key),
        f"****{key[-4:]}",
        f"{key[:2]}***{key[-2:]}",
        key[8:-4],
        key[4:20],
    ]


@pytest.mark.parametrize(
    ("provider", "mode", "state"),
    [
        ("openai", None, None),  # masked in an invalid-key message
        ("deepseek", None, None),
        ("xai", None, None),
        ("openrouter", None, "valid"),  # a masked label in a valid answer
        ("custom", "echo", "valid"),  # the key itself in an error message
        ("custom", "echo_models", "valid"),  # the key itself as a "model id"
        ("groq", "echo", "valid"),
    ],
)
def test_the_key_never_shows_in_logs_audit_or_pages(
    make_app, emulator, caplog, provider, mode, state
):
    caplog.set_level(logging.DEBUG)
    app = app_for(make_app, provider)
    client = signed_in(app)
    key = emulator.register(provider, state=state) if state else None
    key = store_key(app, emulator, provider, key)
    if mode:
        emulator.set_mode(provider, mode)
    responses = [validate(client, provider), validate(client, provider, deep=True)]
    responses.append(client.post("/keys/validate-all", follow_redirects=True))
    # And through the form: a rejected or accepted save says what the provider said.
    data = {"api_key": key, **emulator.endpoint_config(provider)}
    responses.append(client.post(f"/keys/{provider}", data=data, follow_redirects=True))
    responses.append(client.get(f"/keys/{provider}"))
    assert len(emulator.received()) >= 4

    logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
    written = _everything_written(app)
    assert "key.validate" in written
    for form in _forms_of(key):
        for response in responses:
            assert form not in page(response) + str(response.headers)
        assert form not in logged
        assert form not in written
    if mode == "echo_models":
        assert row_of(app, provider).models == ["gpt-4o-mini"]


def test_checks_of_one_user_do_not_touch_another_users_key(make_app, emulator):
    app = make_app()
    alice = signed_in(app)
    bob = signed_in(app, "bob@example.com")
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    assert bob.post("/keys/groq/validate").status_code == 404
    bob.post("/keys/validate-all")
    assert emulator.received() == []
    assert row_of(app, "groq").status == "unchecked"
    assert alice.post("/keys/groq/validate").status_code == 302


def test_validation_needs_a_csrf_token_and_a_login(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    assert client.post("/keys/groq/validate", csrf=False).status_code == 400
    assert client.post("/keys/validate-all", csrf=False).status_code == 400
    assert client.get("/keys/groq/validate").status_code == 405
    anonymous = app.test_client()
    response = anonymous.post("/keys/groq/validate")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert emulator.received() == []


def test_validation_is_rate_limited_per_user(make_app, emulator):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_VALIDATE="3/hour")
    client = signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    statuses = [client.post("/keys/groq/validate").status_code for _ in range(2)]
    statuses.append(client.post("/keys/validate-all").status_code)
    statuses.append(client.post("/keys/groq/validate").status_code)
    assert statuses == [302, 302, 302, 429]
    assert len(emulator.received()) == 3
    # Another user has a budget of their own.
    other = signed_in(app, "bob@example.com")
    store_key(app, emulator, "groq", emulator.valid_key("groq"), email="bob@example.com")
    assert other.post("/keys/groq/validate").status_code == 302


def test_refused_connection_is_not_called_invalid(make_app, emulator):
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    app = make_app(PROVIDER_BASE_URLS={"openai": dead})
    client = signed_in(app)
    store_key(app, emulator, "openai", emulator.valid_key("openai"))
    html = page(validate(client, "openai"))
    assert "rejected" not in html and "Invalid" not in dashboard_row(html, "openai")
