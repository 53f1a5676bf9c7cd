"""Helpers for provider-check tests: apps aimed at the emulator, stored keys, dashboard rows."""

from __future__ import annotations

import re
import socket

from flask import Flask

from tests.conftest import AuthActions, BrowserClient
from tests.emulator import USER_ENDPOINT, Emulator
from tests.helpers import store
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import UserAPIKey
from webapp.providers.catalog import all_providers

ALL = [p.id for p in all_providers()]
EMAIL = "alice@example.com"


def page(response) -> str:
    return response.get_data(as_text=True)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_for(make_app, provider: str, **overrides) -> Flask:
    """An app for checks of ``provider``; user-given endpoints may be the emulator's loopback."""
    if provider in USER_ENDPOINT:
        overrides.setdefault("ALLOW_HTTP_ENDPOINTS", True)
        overrides.setdefault("ALLOW_PRIVATE_ENDPOINTS", True)
    return make_app(**overrides)


def signed_in(app: Flask, email: str = EMAIL) -> BrowserClient:
    client = app.test_client()
    assert AuthActions(client).register(email).status_code == 302
    return client


def store_key(
    app: Flask,
    emulator: Emulator,
    provider: str,
    key: str | None = None,
    *,
    email: str = EMAIL,
    base_url: str | None = None,
) -> str:
    """Store a key without checking it, configured to reach the emulator (or ``base_url``)."""
    config = emulator.endpoint_config(provider)
    if base_url and provider in USER_ENDPOINT:
        config = {**config, next(iter(config)): base_url}
    return store(app, email, provider, key, **config)


def validate(client: BrowserClient, provider: str, *, deep: bool = False):
    data = {"deep": "y"} if deep else {}
    return client.post(f"/keys/{provider}/validate", data=data, follow_redirects=True)


def row_of(app: Flask, provider: str, email: str = EMAIL) -> UserAPIKey | None:
    with app.app_context():
        db.session.remove()
        user = find_user(email)
        row = db.session.scalar(db.select(UserAPIKey).filter_by(user_id=user.id, provider=provider))
        if row is not None:
            db.session.expunge(row)
        return row


def api_status(client: BrowserClient, provider: str) -> dict:
    """The API's status object for ``provider``."""
    statuses = client.get("/api/api-keys/status").get_json()["providers"]
    return next(s for s in statuses if s["provider"] == provider)


def dashboard_row(html: str, provider: str) -> str:
    """The dashboard's table row for ``provider``."""
    match = re.search(rf'<tr id="provider-{provider}".*?</tr>', html, re.S)
    assert match, f"no dashboard row for {provider}"
    return match.group(0)


def badge(row_html: str) -> str:
    match = re.search(r'<span class="badge [^"]*">([^<]+)</span>', row_html)
    assert match, row_html
    return match.group(1)
