"""First start: the gate, the one-time setup token, the setup pages and the operator commands."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from webapp.audit.models import AuditEvent
from webapp.auth.models import User
from webapp.extensions import db
from webapp.keys.models import GlobalAPIKey
from webapp.setup.models import SetupToken

ADMIN = "root@example.com"


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def fresh(make_app):
    return make_app(fresh=True)


def token_of(app) -> str:
    return Path(app.config["SETUP_TOKEN_FILE"]).read_text().strip()


def actions(app, name: str) -> list[AuditEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(db.select(AuditEvent).filter_by(action=name)).all()
        db.session.expunge_all()
        return list(rows)


def admins(app) -> list[str]:
    with app.app_context():
        db.session.remove()
        return list(db.session.scalars(db.select(User.email).filter_by(is_admin=True)))


def enter_token(client, token: str):
    return client.post("/setup/token", data={"token": token})


def finish(client, email: str = ADMIN):
    return client.post(
        "/setup/finish", data={"email": email, "password": PASSWORD, "confirm": PASSWORD}
    )


@pytest.mark.parametrize("path", ["/", "/keys/", "/auth/login", "/auth/register", "/nowhere"])
def test_every_page_leads_to_setup_until_there_is_an_admin(fresh, path):
    response = fresh.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/setup"


def test_probes_static_files_and_setup_itself_are_not_redirected(fresh):
    client = fresh.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    with client.get("/static/css/keyhold.css") as response:
        assert response.status_code == 200
    page = client.get("/setup")
    assert page.status_code == 200 and "Setup token" in text(page)


def test_api_calls_get_a_json_error_not_a_redirect(fresh):
    response = fresh.test_client().get("/api/api-keys/status")
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "setup_required"


def test_a_signed_in_user_from_before_setup_is_sent_to_setup_too(fresh):
    with fresh.app_context():
        from webapp.auth.services import register

        register("old@example.com", PASSWORD)
    client = fresh.test_client()
    client.post("/auth/login", data={"email": "old@example.com", "password": PASSWORD})
    assert client.get("/keys/").headers["Location"] == "/setup"


def test_the_token_is_made_once_written_0600_stored_hashed_and_logged_once(fresh, caplog):
    caplog.set_level(logging.WARNING, logger="webapp.setup.service")
    client = fresh.test_client()
    for _ in range(3):
        client.get("/keys/")
    token = token_of(fresh)
    path = Path(fresh.config["SETUP_TOKEN_FILE"])
    assert token.startswith("khs_") and len(token) > 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    logged = [r.getMessage() for r in caplog.records if token in r.getMessage()]
    assert len(logged) == 1 and str(path) in logged[0]
    with fresh.app_context():
        rows = db.session.scalars(db.select(SetupToken)).all()
        assert len(rows) == 1 and rows[0].token_hash != token and token not in rows[0].token_hash
    assert len(actions(fresh, "setup.token_issued")) == 1


def test_without_the_token_nothing_can_be_done(fresh):
    client = fresh.test_client()
    assert "Setup token" in text(client.get("/setup"))
    assert finish(client).headers["Location"] == "/setup"
    assert client.get("/setup/keys/openai").headers["Location"] == "/setup"
    assert client.post("/setup/keys/openai", data={"api_key": "x"}).status_code == 302
    assert admins(fresh) == []
    assert "Create the admin account" not in text(client.get("/setup"))


def test_a_wrong_token_is_refused_and_audited(fresh):
    client = fresh.test_client()
    client.get("/setup")
    response = enter_token(client, "khs_" + "x" * 43)
    assert response.status_code == 400
    assert "not the current setup token" in text(response)
    assert "Create the admin account" not in text(client.get("/setup"))
    denied = actions(fresh, "access.denied")
    assert [(e.outcome, e.details["reason"]) for e in denied] == [("denied", "setup_token")]


def test_a_token_pasted_with_spaces_or_a_line_break_around_it_opens_setup(fresh):
    client = fresh.test_client()
    client.get("/setup")
    assert enter_token(client, f"  {token_of(fresh)}\n").headers["Location"] == "/setup"
    assert "Create the admin account" in text(client.get("/setup"))
    assert actions(fresh, "access.denied") == []


def test_the_right_token_is_on_the_record_with_its_address(fresh):
    # The moment a browser gains the right to set global keys and create the first admin.
    client = fresh.test_client()
    client.get("/setup")
    headers = {"User-Agent": "setup-browser"}
    client.post("/setup/token", data={"token": token_of(fresh)}, headers=headers)
    [accepted] = actions(fresh, "setup.token_accepted")
    assert (accepted.outcome, accepted.actor_user_id, accepted.user_agent) == (
        "ok",
        None,
        "setup-browser",
    )
    assert accepted.ip == "127.0.0.1"
    assert token_of(fresh) not in str(vars(accepted))


def test_setup_with_the_right_token_end_to_end(fresh, emulator):
    client = fresh.test_client()
    client.get("/setup")
    token = token_of(fresh)
    assert enter_token(client, token).headers["Location"] == "/setup"
    page = text(client.get("/setup"))
    assert "Create the admin account" in page and "Global key" in page

    # A global key, checked with the provider like a user's key.
    key = emulator.valid_key("groq")
    response = client.post("/setup/keys/groq", data={"api_key": key}, follow_redirects=True)
    assert "The global Groq key was added. Status: Valid." in text(response)
    assert key not in text(response)
    [event] = actions(fresh, "global_key.set")
    assert event.actor_user_id is None and event.details["via"] == "setup_token"

    response = finish(client)
    assert response.headers["Location"] == "/admin/keys"
    assert admins(fresh) == [ADMIN]
    admin_page = client.get("/admin/keys")  # signed in as the new admin
    assert admin_page.status_code == 200 and "Groq" in text(admin_page)
    assert [e.details["via"] for e in actions(fresh, "admin.create")] == ["setup"]
    assert [e.details["via"] for e in actions(fresh, "setup.complete")] == ["setup"]

    # The token died with setup, and /setup is gone.
    with fresh.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(SetupToken)) == 0
        assert db.session.scalar(db.select(GlobalAPIKey.status)) == "valid"
    assert not Path(fresh.config["SETUP_TOKEN_FILE"]).exists()
    stranger = fresh.test_client()
    assert stranger.get("/setup").status_code == 404
    assert enter_token(stranger, token).status_code == 404
    assert stranger.get("/auth/login").status_code == 200
    # The late token opened nothing, and is on the record as the API's would be.
    [late] = actions(fresh, "access.denied")
    assert (late.outcome, late.details) == ("denied", {"reason": "setup_finished"})


def test_the_token_dies_for_every_session_once_used(fresh):
    first, second = fresh.test_client(), fresh.test_client()
    first.get("/setup")
    token = token_of(fresh)
    enter_token(first, token)
    enter_token(second, token)
    assert finish(first).status_code == 302
    assert finish(second, "other@example.com").status_code == 404
    assert admins(fresh) == [ADMIN]


def test_admin_form_rules_are_the_account_rules(fresh):
    client = fresh.test_client()
    client.get("/setup")
    enter_token(client, token_of(fresh))
    response = client.post(
        "/setup/finish", data={"email": "not-an-email", "password": "short", "confirm": "short"}
    )
    assert response.status_code == 400
    assert "Invalid email" in text(response) and "at least 12" in text(response)
    assert admins(fresh) == []


def test_an_invalid_global_key_is_not_stored_during_setup(fresh, emulator):
    client = fresh.test_client()
    client.get("/setup")
    enter_token(client, token_of(fresh))
    response = client.post("/setup/keys/groq", data={"api_key": "gsk_" + "a" * 52})
    assert response.status_code == 400
    assert "The provider said" in text(response)
    with fresh.app_context():
        assert db.session.scalar(db.select(GlobalAPIKey)) is None


def test_setup_token_command_replaces_the_token(fresh):
    client = fresh.test_client()
    client.get("/setup")
    old = token_of(fresh)
    enter_token(client, old)
    result = fresh.test_cli_runner().invoke(args=["setup-token"])
    assert result.exit_code == 0, result.output
    new = result.stdout.strip()
    assert new.startswith("khs_") and new != old and token_of(fresh) == new
    # The old token, and the session that used it, open nothing now.
    assert "Setup token" in text(client.get("/setup"))
    assert enter_token(fresh.test_client(), old).status_code == 400
    assert enter_token(client, new).headers["Location"] == "/setup"
    assert finish(client).status_code == 302
    assert [e.details["via"] for e in actions(fresh, "setup.token_issued")] == [
        "first_start",
        "command",
    ]


def test_the_first_start_creates_the_token_before_anyone_visits(fresh, caplog):
    caplog.set_level(logging.WARNING, logger="webapp")
    runner = fresh.test_cli_runner()
    assert runner.invoke(args=["setup-token", "--first-start"]).exit_code == 0
    token = token_of(fresh)
    assert stat.S_IMODE(Path(fresh.config["SETUP_TOKEN_FILE"]).stat().st_mode) == 0o600
    assert [r for r in caplog.records if token in r.getMessage()]  # logged once, to the operator
    # Starting again (every make run does) neither replaces nor logs it again.
    caplog.clear()
    assert runner.invoke(args=["setup-token", "--first-start"]).exit_code == 0
    assert token_of(fresh) == token and not [r for r in caplog.records if token in r.getMessage()]
    assert enter_token(fresh.test_client(), token).headers["Location"] == "/setup"
    assert [e.details["via"] for e in actions(fresh, "setup.token_issued")] == ["first_start"]


def test_the_first_start_command_after_setup_changes_nothing(app):
    result = app.test_cli_runner().invoke(args=["setup-token", "--first-start"])
    assert result.exit_code == 0 and result.output == ""
    assert actions(app, "setup.token_issued") == []


def test_setup_token_command_after_setup_is_an_error(app):
    result = app.test_cli_runner().invoke(args=["setup-token"])
    assert result.exit_code == 1 and "Setup is finished" in result.output


def test_create_admin_command_finishes_setup(fresh, monkeypatch):
    fresh.test_client().get("/setup")
    monkeypatch.setenv("KEYHOLD_ADMIN_PASSWORD", PASSWORD)
    result = fresh.test_cli_runner().invoke(args=["create-admin", "Ops@Example.com"])
    assert result.exit_code == 0, result.output
    assert "Setup is finished" in result.output
    assert admins(fresh) == ["ops@example.com"]
    assert not Path(fresh.config["SETUP_TOKEN_FILE"]).exists()
    assert fresh.test_client().get("/setup").status_code == 404
    assert [e.details["via"] for e in actions(fresh, "setup.complete")] == ["command"]


def test_create_admin_command_prompts_for_the_password(app, monkeypatch):
    monkeypatch.delenv("KEYHOLD_ADMIN_PASSWORD", raising=False)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "second@example.com"], input=f"{PASSWORD}\n" * 2)
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert "second@example.com" in admins(app)
    assert len(actions(app, "setup.complete")) == 1  # the first admin's, not this one's


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", PASSWORD, "email address"),
        ("x@example.com", "short", "at least 12"),
        ("x@example.com", " " * 12, "not all blank"),
        ("x@example.com", "p" * 1025, "at most 1024"),
        ("admin@example.com", PASSWORD, "already exists"),
        # Bytes that are not UTF-8 reach Python as lone surrogates: no password, no address.
        ("x@example.com", "correct horse \udcff battery", "KEYHOLD_ADMIN_PASSWORD is not"),
    ],
)
def test_create_admin_command_refuses_bad_input(app, monkeypatch, email, password, message):
    monkeypatch.setenv("KEYHOLD_ADMIN_PASSWORD", password)
    result = app.test_cli_runner().invoke(args=["create-admin", email])
    assert result.exit_code == 1
    assert message in result.output
    assert admins(app) == ["admin@example.com"]


def test_create_admin_refuses_an_email_in_another_encoding(app, monkeypatch):
    monkeypatch.setenv("KEYHOLD_ADMIN_PASSWORD", PASSWORD)
    result = app.test_cli_runner().invoke(args=["create-admin", "x\udcff@example.com"])
    assert result.exit_code == 2 and "not valid UTF-8 text" in result.output
    assert admins(app) == ["admin@example.com"]


def test_a_second_token_cannot_be_made_while_one_exists(fresh):
    fresh.test_client().get("/keys/")
    token = token_of(fresh)
    from webapp.setup import service

    with fresh.app_context():
        service.ensure_token()
        assert db.session.scalar(db.select(db.func.count()).select_from(SetupToken)) == 1
    assert token_of(fresh) == token


def test_a_token_file_that_cannot_be_written_loses_no_token(make_app, tmp_path, caplog):
    # SETUP_TOKEN_FILE where no file can be (under a file): the first start still shows the
    # token (in the log), and the setup page works instead of failing.
    caplog.set_level(logging.WARNING, logger="webapp")
    (tmp_path / "a-file").write_text("")
    unwritable = tmp_path / "a-file" / "setup-token"
    app = make_app(fresh=True, SETUP_TOKEN_FILE=str(unwritable))
    assert app.test_cli_runner().invoke(args=["setup-token", "--first-start"]).exit_code == 0
    (shown,) = [r.getMessage() for r in caplog.records if "khs_" in r.getMessage()]
    token = re.search(r"khs_[A-Za-z0-9_-]+", shown).group(0)
    assert "could not be written" in shown and not unwritable.exists()
    assert app.test_client().get("/setup").status_code == 200
    assert enter_token(app.test_client(), token).headers["Location"] == "/setup"
    replaced = app.test_cli_runner().invoke(args=["setup-token"])
    assert replaced.exit_code == 0 and replaced.stdout.startswith("khs_")
    assert "not written to" in replaced.stderr
