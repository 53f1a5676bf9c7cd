"""``flask keys revalidate``: stored keys, users' and global, checked again from cron."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.conftest import ADMIN_EMAIL
from tests.test_plaintext import closed_port
from tests.token_helpers import audit_rows
from tests.validation_helpers import EMAIL, row_of, signed_in, store_key
from webapp.db_types import utcnow
from webapp.extensions import db
from webapp.keys import global_keys
from webapp.keys.models import GlobalAPIKey, UserAPIKey


def revalidate(app, *args: str):
    return app.test_cli_runner().invoke(args=["keys", "revalidate", *args])


def checked_openai(app, emulator, client) -> str:
    """A stored OpenAI key the provider accepted when it was saved."""
    key = emulator.valid_key("openai")
    client.post("/keys/openai", data={"api_key": key})
    assert row_of(app, "openai").is_valid is True
    return key


def test_a_key_the_provider_now_rejects_is_marked_invalid_and_flagged(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    key = checked_openai(app, emulator, client)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    emulator.register("openai", key, state="revoked")  # revoked at the provider since

    result = revalidate(app)
    assert result.exit_code == 0, result.output
    assert "Checked 2 key(s): 1 invalid, 1 valid." in result.output
    assert f"Now rejected by their provider: user {row_of(app, 'openai').user_id} openai." in (
        result.output
    )
    stored = row_of(app, "openai")
    assert (stored.status, stored.is_valid) == ("invalid", False)
    assert row_of(app, "groq").status == "valid"
    page = client.get("/keys/").get_data(as_text=True)
    assert "the provider rejects this key; replace it." in page
    # The re-checks are in the owner's own history, made by nobody signed in.
    rechecks = [r for r in audit_rows(app, "key.validate") if r.details["trigger"] == "revalidate"]
    assert {(r.actor_user_id, r.subject_user_id) for r in rechecks} == {(None, stored.user_id)}
    assert key not in result.output


def test_an_outage_is_an_error_not_invalid(make_app, emulator):
    app = make_app(PROVIDER_BASE_URLS={"mistral": f"http://127.0.0.1:{closed_port()}/mistral"})
    client = signed_in(app)
    checked_openai(app, emulator, client)
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))
    emulator.set_mode("openai", "down")

    result = revalidate(app)
    assert result.exit_code == 0, result.output
    assert "1 provider unreachable, 1 provider error" in result.output
    assert "Now rejected" not in result.output
    down = row_of(app, "openai")
    assert (down.status, down.is_valid) == ("provider_error", True)  # still known to be good
    assert row_of(app, "mistral").status == "network_error"
    assert row_of(app, "mistral").is_valid is None
    assert "the provider rejects this key" not in client.get("/keys/").get_data(as_text=True)


def test_a_hostile_answer_spoils_only_its_own_check(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    checked_openai(app, emulator, client)
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))
    emulator.set_mode("openai", "nested")
    result = revalidate(app)
    assert result.exit_code == 0, result.output
    assert "1 valid" in result.output and "1 provider error" in result.output
    assert (row_of(app, "openai").status, row_of(app, "openai").is_valid) == (
        "provider_error",
        True,
    )
    assert row_of(app, "mistral").status == "valid"


def test_global_keys_are_checked_too(make_app, emulator):
    app = make_app()
    key = emulator.valid_key("groq")
    with app.app_context():
        global_keys.save_global_key("groq", key, {}, actor=None, validate=False)
    emulator.register("groq", key, state="revoked")
    result = revalidate(app)
    assert "Now rejected by their provider: global groq." in result.output
    with app.app_context():
        row = db.session.scalar(db.select(GlobalAPIKey))
        assert (row.status, row.is_valid) == ("invalid", False)
    (event,) = audit_rows(app, "key.validate")
    assert event.subject_user_id is None and event.details["trigger"] == "revalidate"


def test_older_than_skips_keys_checked_recently(make_app, emulator):
    app = make_app()
    client = signed_in(app)
    checked_openai(app, emulator, client)  # checked just now, on save
    store_key(app, emulator, "groq", emulator.valid_key("groq"))  # never checked
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))
    with app.app_context():
        db.session.execute(
            db.update(UserAPIKey)
            .filter_by(provider="mistral")
            .values(last_validated=utcnow() - timedelta(hours=30))
        )
        db.session.commit()
    before = len(emulator.received())
    result = revalidate(app, "--older-than", "24")
    assert "Checked 2 key(s)" in result.output
    assert {r.provider for r in emulator.received()[before:]} == {"groq", "mistral"}
    assert "No stored keys to check." in revalidate(app, "--older-than", "24").output


def test_one_provider_only(make_app, emulator):
    app = make_app()
    signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))
    result = revalidate(app, "--provider", "groq")
    assert "Checked 1 key(s): 1 valid." in result.output
    assert row_of(app, "mistral").status == "unchecked"
    unknown = revalidate(app, "--provider", "nosuch")
    assert unknown.exit_code == 2 and "unknown provider" in unknown.output


def test_keys_are_checked_in_parallel_batch_by_batch(make_app, emulator, user_client):
    app = make_app(VALIDATION_MAX_WORKERS=4)
    providers = ["openai", "groq", "mistral", "together"]
    for n in range(2):
        email = f"user{n}@example.com"
        user_client(email)
        for provider in providers:
            store_key(app, emulator, provider, emulator.valid_key(provider), email=email)
    for provider in providers:
        emulator.slow(provider, 0.6)
    started = time.monotonic()
    result = revalidate(app, "--batch-size", "4")
    elapsed = time.monotonic() - started
    assert "Checked 8 key(s): 8 valid." in result.output
    # Two batches of four at once: about two answers' time, where one by one would be eight.
    assert 1.2 <= elapsed < 3.0, elapsed


def test_an_unreadable_key_is_reported_and_the_rest_checked(make_app, emulator):
    app = make_app()
    signed_in(app)
    store_key(app, emulator, "groq", emulator.valid_key("groq"))
    store_key(app, emulator, "mistral", emulator.valid_key("mistral"))
    with app.app_context():
        db.session.execute(
            text("UPDATE user_api_keys SET provider = 'openai' WHERE provider = 'groq'")
        )
        db.session.commit()
    result = revalidate(app)
    assert result.exit_code == 1
    assert "Checked 1 key(s): 1 valid." in result.output
    assert "Could not decrypt (not checked): user" in result.output and "openai" in result.output


def test_nothing_stored_nothing_checked(make_app):
    app = make_app()
    result = revalidate(app)
    assert result.exit_code == 0 and "No stored keys to check." in result.output
    assert ADMIN_EMAIL not in result.output and EMAIL not in result.output


@pytest.mark.parametrize("hours", ["inf", "nan", "1e12"])
def test_an_older_than_that_is_no_time_span_is_refused_clearly(app, hours):
    result = revalidate(app, "--older-than", hours)
    assert result.exit_code == 2, result.output
    assert "--older-than" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("command", [["keys", "revalidate"], ["keys", "rotate-secret"]])
def test_a_batch_size_past_any_batch_is_refused_clearly(app, command):
    result = app.test_cli_runner().invoke(args=[*command, "--batch-size", str(2**64)])
    assert result.exit_code == 2, result.output
    assert "--batch-size" in result.output and "Traceback" not in result.output
