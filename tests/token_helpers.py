"""Helpers for access-token tests: issue tokens directly, call the API with one, read rows back."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask

from webapp.audit.models import AuditEvent
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.tokens import service
from webapp.tokens.models import AccessToken

ALICE = "alice@example.com"
BOB = "bob@example.com"


def issue(
    app: Flask,
    email: str = ALICE,
    scopes: Iterable[str] = ("keys:read",),
    *,
    days: int | None = 90,
    ips: Iterable[str] = (),
    name: str = "script",
) -> tuple[int, str]:
    """Create a token through the service; return its id and plaintext."""
    with app.app_context():
        spec = service.clean_spec(name, list(scopes), days, list(ips))
        issued = service.create_token(find_user(email), spec)
        return issued.row.id, issued.token


def call(client, method: str, path: str, token: str, *, headers=None, **kwargs):
    """An API request authenticated by ``token`` and nothing else a browser would add."""
    headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    return client.open(path, method=method, headers=headers, csrf=False, **kwargs)


def token_row(app: Flask, token_id: int) -> AccessToken:
    with app.app_context():
        db.session.remove()
        row = db.session.get(AccessToken, token_id)
        db.session.expunge_all()
        return row


def update_token(app: Flask, token_id: int, **values) -> None:
    with app.app_context():
        db.session.execute(db.update(AccessToken).filter_by(id=token_id).values(**values))
        db.session.commit()


def audit_rows(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(
            db.select(AuditEvent).filter_by(action=action).order_by(AuditEvent.id)
        ).all()
        db.session.expunge_all()
        return list(rows)


def browser_session(app: Flask, client) -> dict:
    """The session the browser holds after its last response, decoded.

    The cookie is signed, base64 and maybe compressed JSON, so a token stored
    in it would not show verbatim in the Set-Cookie header.
    """
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None, "the browser holds no session"
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def error_code(response) -> str:
    assert response.is_json, response.get_data(as_text=True)[:300]
    return response.get_json()["error"]["code"]
