"""The foundation as a person meets it: register, add keys, replace, delete, log out."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import AuthActions
from tests.fakekeys import fake_key
from webapp.audit.models import AuditEvent
from webapp.auth.models import User
from webapp.auth.services import find_user
from webapp.extensions import db
from webapp.keys.models import UserAPIKey


def page(response) -> str:
    return response.get_data(as_text=True)


def test_full_key_flow(client, auth, app, emulator):
    # Register and land on the dashboard.
    response = auth.register("Alice@Example.com ")
    assert response.status_code == 302
    dashboard = client.get("/keys/")
    assert dashboard.status_code == 200
    assert "alice@example.com" in page(dashboard)
    assert "Add key" in page(dashboard)

    # Log out and back in.
    assert auth.logout().status_code == 302
    assert client.get("/keys/").status_code == 302
    response = auth.login("alice@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/keys/"

    # Add keys for two providers (keys the providers accept).
    openai_key = emulator.valid_key("openai")
    anthropic_key = emulator.valid_key("anthropic")
    response = client.post("/keys/openai", data={"api_key": openai_key})
    assert response.status_code == 302
    response = client.post(
        "/keys/anthropic", data={"api_key": anthropic_key}, follow_redirects=True
    )
    html = page(response)
    assert "Your Anthropic key was added." in html
    assert f"sk-proj-\u2026{openai_key[-4:]}" in html
    assert f"sk-ant-api03-\u2026{anthropic_key[-4:]}" in html
    assert openai_key not in html and anthropic_key not in html

    # Replace one: the hint changes, the row is the same.
    with app.app_context():
        first_id = db.session.scalar(db.select(UserAPIKey.id).filter_by(provider="openai"))
    new_key = emulator.valid_key("openai")
    response = client.post("/keys/openai", data={"api_key": new_key}, follow_redirects=True)
    html = page(response)
    assert "Your OpenAI key was replaced." in html
    assert f"\u2026{new_key[-4:]}" in html
    assert f"\u2026{openai_key[-4:]}" not in html
    with app.app_context():
        rows = db.session.scalars(db.select(UserAPIKey).filter_by(provider="openai")).all()
        assert [r.id for r in rows] == [first_id]

    # The form page for a stored key shows only the hint.
    form_page = client.get("/keys/openai")
    assert form_page.headers["Cache-Control"] == "no-store"
    assert new_key not in page(form_page)
    assert f"\u2026{new_key[-4:]}" in page(form_page)

    # Delete one, with a confirmation page first.
    confirm = client.get("/keys/anthropic/delete")
    assert "Delete your Anthropic key?" in page(confirm)
    response = client.post("/keys/anthropic/delete", follow_redirects=True)
    html = page(response)
    assert "Your Anthropic key was deleted." in html
    assert "sk-ant-api03-" not in html
    with app.app_context():
        assert db.session.scalar(db.select(UserAPIKey).filter_by(provider="anthropic")) is None

    # Log out: the dashboard is gone.
    response = auth.logout()
    assert response.headers["Location"] == "/auth/login"
    response = client.get("/keys/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_azure_and_custom_need_their_endpoint(make_app, emulator):
    # The endpoint is the emulator's, on loopback over http, which this app allows.
    app = make_app(ALLOW_HTTP_ENDPOINTS=True, ALLOW_PRIVATE_ENDPOINTS=True)
    client = app.test_client()
    AuthActions(client).register()
    response = client.post("/keys/azure_openai", data={"api_key": fake_key("azure_openai")})
    assert response.status_code == 400
    assert "Enter the endpoint." in page(response)
    endpoint = emulator.base_url("azure_openai")
    response = client.post(
        "/keys/azure_openai",
        data={
            "api_key": emulator.valid_key("azure_openai"),
            "endpoint": endpoint + "/",
            "api_version": "2024-10-21",
        },
    )
    assert response.status_code == 302
    # The stored endpoint is shown back in the form (it is not a secret).
    assert endpoint in page(client.get("/keys/azure_openai"))


def test_unknown_provider_is_404(client, auth):
    auth.register()
    assert client.get("/keys/nosuch").status_code == 404
    assert client.post("/keys/nosuch", data={"api_key": "x" * 40}).status_code == 404
    assert client.post("/keys/nosuch/delete").status_code == 404


def test_deleting_a_key_you_do_not_have_is_404(client, auth):
    auth.register()
    assert client.get("/keys/openai/delete").status_code == 404
    assert client.post("/keys/openai/delete").status_code == 404


def test_a_registration_that_cannot_be_written_is_audited_as_failed(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    def the_database_refuses_new_users(session, _context, _instances):
        if any(isinstance(obj, User) for obj in session.new):
            raise OperationalError("INSERT INTO users ...", {}, Exception("disk I/O error"))

    event.listen(Session, "before_flush", the_database_refuses_new_users)
    try:
        response = AuthActions(app.test_client()).register("bob@example.com")
    finally:
        event.remove(Session, "before_flush", the_database_refuses_new_users)
    assert response.status_code == 500
    assert "Something went wrong" in page(response)
    with app.app_context():
        assert find_user("bob@example.com") is None
        outcomes = db.session.scalars(
            db.select(AuditEvent.outcome).filter_by(action="user.register")
        ).all()
    assert outcomes == ["failed"]


def test_registering_a_taken_email_is_refused_not_failed(client, auth, app):
    auth.register("dup@example.com")
    auth.logout()
    assert auth.register("dup@example.com").status_code == 400
    with app.app_context():
        outcomes = db.session.scalars(
            db.select(AuditEvent.outcome).filter_by(action="user.register")
        ).all()
    assert outcomes == ["ok"]
