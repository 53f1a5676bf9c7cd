"""Malformed input on every form: a message next to the field, nothing stored or changed."""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import PASSWORD
from tests.fakekeys import fake_key
from tests.helpers import rows_of, store
from webapp.auth.models import User
from webapp.extensions import db


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "", "password": PASSWORD, "confirm": PASSWORD}, "Enter your email address."),
        ({"email": "not-an-email", "password": PASSWORD, "confirm": PASSWORD}, "Invalid email"),
        ({"email": "a@example.com", "password": "short", "confirm": "short"}, "at least 12"),
        (
            {"email": "a@example.com", "password": PASSWORD, "confirm": PASSWORD + "x"},
            "do not match",
        ),
        ({"email": "a@example.com", "password": "", "confirm": ""}, "Choose a password."),
        (
            {"email": "a@example.com", "password": "p" * 1025, "confirm": "p" * 1025},
            "Use at most 1024 characters.",
        ),
    ],
)
def test_register_rejects(client, app, data, message):
    response = client.post("/auth/register", data=data)
    assert response.status_code == 400
    assert message in text(response)
    with app.app_context():
        users = db.select(db.func.count()).select_from(User).filter_by(is_admin=False)
        assert db.session.scalar(users) == 0


def test_register_twice_with_the_same_email(client, auth, app):
    auth.register("dup@example.com")
    auth.logout()
    response = auth.register("DUP@example.com")
    assert response.status_code == 400
    assert "already exists" in text(response)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "", "password": "x"}, "Enter your email address."),
        ({"email": "alice@example.com", "password": ""}, "Enter your password."),
    ],
)
def test_login_rejects(client, auth, data, message):
    auth.register()
    auth.logout()
    response = client.post("/auth/login", data=data)
    assert response.status_code == 400 and message in text(response)


LONG = "sk-" + "a" * 600


@pytest.mark.parametrize(
    ("provider", "data", "field", "message"),
    [
        ("openai", {"api_key": ""}, "api_key", "Enter the API key."),
        ("openai", {"api_key": "   "}, "api_key", "Enter the API key."),
        ("openai", {"api_key": "sk-proj-abc def" + "x" * 40}, "api_key", "spaces or line breaks"),
        ("openai", {"api_key": "sk-proj-abc\tdef" + "x" * 40}, "api_key", "spaces or line breaks"),
        ("openai", {"api_key": LONG}, "api_key", "longer than any API key"),
        ("openai", {"api_key": "sk-proj-\x00" + "x" * 40}, "api_key", "cannot be part"),
        ("openai", {"api_key": "sk-proj-é" + "x" * 40}, "api_key", "cannot be part"),
        ("openai", {"api_key": "pk-" + "x" * 48}, "api_key", "does not look like a key for OpenAI"),
        ("anthropic", {"api_key": "sk-ant-admin01-" + "x" * 93}, "api_key", "Admin API key"),
        ("groq", {"api_key": "gsk_tooshort"}, "api_key", "Starts with gsk_, 56 characters"),
        ("gemini", {"api_key": "AIza123"}, "api_key", "does not look like a key for Google Gemini"),
        (
            "azure_openai",
            {"endpoint": "http://contoso.openai.azure.com", "api_version": "2024-10-21"},
            "endpoint",
            "must start with https://",
        ),
        (
            "azure_openai",
            {"endpoint": "https://10.0.0.5", "api_version": "2024-10-21"},
            "endpoint",
            "private network",
        ),
        (
            "azure_openai",
            {"endpoint": "https://contoso.openai.azure.com", "api_version": "latest"},
            "api_version",
            "wrong format",
        ),
        (
            "azure_openai",  # Arabic-Indic digits: digits, but not the ones Azure reads
            {"endpoint": "https://contoso.openai.azure.com", "api_version": "٢٠٢٤-١٠-٢١"},
            "api_version",
            "wrong format",
        ),
        ("custom", {"base_url": "https://localhost:8000/v1"}, "base_url", "private network"),
        ("custom", {"base_url": "https://127.0.0.1/v1"}, "base_url", "private network"),
        ("custom", {"base_url": "https://[::1]/v1"}, "base_url", "private network"),
        (
            "custom",
            {"base_url": "https://user:pw@llm.example.com/v1"},
            "base_url",
            "not in the URL",
        ),
        ("custom", {"base_url": "ftp://llm.example.com"}, "base_url", "https://"),
        ("custom", {"base_url": "not a url"}, "base_url", "https://"),
        ("custom", {"base_url": ""}, "base_url", "Enter the base url."),
        ("custom", {"base_url": "https://llm.example.com/v 1"}, "base_url", "spaces or line"),
        ("custom", {"base_url": "https://llm.exa\nmple.com/v1"}, "base_url", "spaces or line"),
        ("custom", {"base_url": "https://llm.example.com/\tv1"}, "base_url", "spaces or line"),
        ("custom", {"base_url": "https://llm.example.com/v1\x00"}, "base_url", "invisible"),
        ("custom", {"base_url": "https://llm.example\u200b.com/v1"}, "base_url", "invisible"),
        (
            "azure_openai",
            {"endpoint": "https://contoso.openai.azure.com\u200b", "api_version": "2024-10-21"},
            "endpoint",
            "invisible",
        ),
        (
            "azure_openai",
            {"endpoint": "https://contoso.openai.azure.com", "api_version": "2024-10-21 x"},
            "api_version",
            "spaces or line",
        ),
    ],
)
def test_key_form_rejects_and_keeps_the_stored_key(
    client, auth, app, provider, data, field, message
):
    auth.register()
    existing = store(app, "alice@example.com", provider, **_valid_config(provider))
    before = rows_of(app, "alice@example.com")[0]
    payload = {"api_key": fake_key(provider), **_valid_config(provider), **data}
    response = client.post(f"/keys/{provider}", data=payload)
    assert response.status_code == 400
    html = text(response)
    assert message in html
    assert f'id="{field}-error"' in html  # shown next to the field it is about
    after = rows_of(app, "alice@example.com")[0]
    assert (after.encrypted_key, after.key_hint, after.config) == (
        before.encrypted_key,
        before.key_hint,
        before.config,
    )
    assert existing[-4:] in after.key_hint


def _valid_config(provider: str) -> dict[str, str]:
    return {
        "azure_openai": {
            "endpoint": "https://contoso.openai.azure.com",
            "api_version": "2024-10-21",
        },
        "custom": {"base_url": "https://llm.example.com/v1"},
    }.get(provider, {})


def test_password_change_rejects_a_wrong_current_password(client, auth):
    auth.register()
    response = client.post(
        "/auth/password",
        data={"current": "wrong password!!", "password": PASSWORD + "2", "confirm": PASSWORD + "2"},
    )
    assert response.status_code == 400
    assert "not your current password" in text(response)
    auth.logout()
    assert auth.login().status_code == 302  # the old password still works


NEW_PASSWORD = PASSWORD + " again"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"current": "", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, "current", "Enter"),
        (
            {"current": "c" * 1025, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            "current",
            "That is not your current password.",
        ),
        ({"current": PASSWORD, "password": "", "confirm": ""}, "password", "Choose a password."),
        (
            {"current": PASSWORD, "password": "short", "confirm": "short"},
            "password",
            "Use at least 12 characters.",
        ),
        (
            {"current": PASSWORD, "password": "p" * 1025, "confirm": "p" * 1025},
            "password",
            "Use at most 1024 characters.",
        ),
        (
            {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"},
            "confirm",
            "The passwords do not match.",
        ),
        ({"current": PASSWORD, "password": NEW_PASSWORD, "confirm": ""}, "confirm", "Type the"),
    ],
)
def test_password_change_rejects_malformed_input(client, auth, data, field, message):
    auth.register()
    response = client.post("/auth/password", data=data)
    assert response.status_code == 400
    html = text(response)
    assert message in html and f'id="{field}-error"' in html
    assert client.get("/keys/").status_code == 200  # still signed in
    auth.logout()
    assert auth.login(password=NEW_PASSWORD).status_code == 400  # the password did not change
    assert auth.login().status_code == 302


def _ids(html: str) -> list[str]:
    return re.findall(r'\sid="([^"]+)"', html)


def _described_by(html: str, field_id: str) -> list[str]:
    tag = re.search(rf'<input[^>]*\sid="{re.escape(field_id)}"[^>]*>', html)
    assert tag is not None, field_id
    found = re.search(r'aria-describedby="([^"]*)"', tag.group(0))
    return found.group(1).split() if found else []


def _label_for(html: str, field_id: str) -> list[str]:
    return re.findall(rf'<label[^>]*for="{re.escape(field_id)}"[^>]*>([^<]*)<', html)


def test_the_key_page_names_each_field_once(client, auth, app):
    # The replace form and the reminder form both have a date: each has its own id, so each
    # label names its own field, and the reminder's date is not the key form's.
    auth.register()
    store(app, "alice@example.com", "openai")
    html = text(client.get("/keys/openai"))
    ids = _ids(html)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    assert _label_for(html, "reminder-expires_at") == ["Expiry reminder"]
    assert len(_label_for(html, "expires_at")) == 1


def test_a_refused_reminder_is_where_the_cursor_goes(client, auth, app):
    auth.register()
    store(app, "alice@example.com", "openai")
    html = text(client.post("/keys/openai/expiry", data={"expires_at": "someday"}))
    reminder = re.search(r'<input[^>]*id="reminder-expires_at"[^>]*>', html).group(0)
    key = re.search(r'<input[^>]*id="api_key"[^>]*>', html).group(0)
    assert "autofocus" in reminder and "autofocus" not in key
    assert _described_by(html, "reminder-expires_at")[0] == "reminder-expires_at-error"


def test_every_error_of_a_field_is_announced(client):
    # An address both too long and malformed: both messages are read out with the field.
    response = client.post(
        "/auth/register",
        data={"email": "a" * 300 + "@example", "password": PASSWORD, "confirm": PASSWORD},
    )
    html = text(response)
    ids = _ids(html)
    assert sorted({i for i in ids if ids.count(i) > 1}) == []
    described = _described_by(html, "email")
    assert len(described) >= 2 and all(d in ids for d in described)


def _upload() -> tuple[io.BytesIO, str]:
    return (io.BytesIO(b"not a form field"), "field.txt")


#: (page, form fields, signed in) with one field sent as something no browser form sends
_ODD_FIELDS = [
    ("/auth/login", {"email": _upload, "password": PASSWORD}, False),
    ("/auth/register", {"email": "b@example.com", "password": _upload, "confirm": "x"}, False),
    ("/auth/password", {"current": _upload, "password": PASSWORD, "confirm": PASSWORD}, True),
    ("/keys/openai", {"api_key": fake_key("openai"), "expires_at": _upload}, True),
    ("/keys/openai/expiry", {"expires_at": _upload}, True),
]


@pytest.mark.parametrize(("path", "fields", "signed_in"), _ODD_FIELDS)
@pytest.mark.parametrize("sent_as", ["file", "json"])
def test_a_field_sent_as_a_file_or_json_is_a_form_error(
    client, auth, app, path, fields, signed_in, sent_as
):
    """A page's form reads form fields only: a file upload or a JSON body (with the CSRF
    header) leaves its fields empty, answered with the form's messages, not a 500."""
    auth.register()
    stored = store(app, "alice@example.com", "openai")
    before = rows_of(app, "alice@example.com")[0].encrypted_key
    if not signed_in:
        auth.logout()
    if sent_as == "file":
        data = {name: value() if callable(value) else value for name, value in fields.items()}
        response = client.post(path, data=data, content_type="multipart/form-data")
    else:
        body = {name: 5 if callable(value) else value for name, value in fields.items()}
        response = client.post(path, json=body)
    assert response.status_code == 400
    assert 'class="field-error"' in text(response)
    assert rows_of(app, "alice@example.com")[0].encrypted_key == before
    assert stored[-4:] in rows_of(app, "alice@example.com")[0].key_hint


@pytest.mark.parametrize("sent_as", ["file", "json"])
def test_the_setup_token_sent_as_a_file_or_json_is_a_form_error(make_app, sent_as):
    fresh = make_app(fresh=True)
    client = fresh.test_client()
    client.get("/setup")
    if sent_as == "file":
        response = client.post(
            "/setup/token", data={"token": _upload()}, content_type="multipart/form-data"
        )
    else:
        response = client.post("/setup/token", json={"token": 5})
    assert response.status_code == 400
    assert "/setup" in response.request.path
