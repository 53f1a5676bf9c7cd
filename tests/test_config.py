"""Start-up configuration: zero-config development, strict production."""

from __future__ import annotations

import json
import logging
import os
import runpy
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn.errors import AppImportError

from webapp import create_app
from webapp.config import ConfigError, normalise_database_url
from webapp.config_checks import check_storage_uri
from webapp.extensions import db

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAMES = ("SECRET_KEY", "API_KEY_ENCRYPTION_SECRET")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("SECRET_KEY", "API_KEY_ENCRYPTION_SECRET", "KEYHOLD_ENV", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYHOLD_INSTANCE_PATH", str(tmp_path / "instance"))
    return tmp_path / "instance"


def test_development_generates_secrets_once(clean_env, caplog):
    caplog.set_level(logging.WARNING)
    app = create_app()
    assert stat.S_IMODE(clean_env.stat().st_mode) == 0o700  # instance/: the owner's alone
    files = {name: clean_env / name for name in ("secret_key", "encryption_secret")}
    for path in files.values():
        assert path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert app.config["SECRET_KEY"] == files["secret_key"].read_text().strip()
    assert app.config["API_KEY_ENCRYPTION_SECRET"] == files["encryption_secret"].read_text().strip()
    assert app.config["SECRET_KEY"] != app.config["API_KEY_ENCRYPTION_SECRET"]
    assert "was not set; generated one" in caplog.text
    assert app.config["API_KEY_ENCRYPTION_SECRET"] not in caplog.text
    # A second start reuses them: keys stored yesterday stay readable.
    again = create_app()
    assert again.config["API_KEY_ENCRYPTION_SECRET"] == app.config["API_KEY_ENCRYPTION_SECRET"]
    assert again.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{clean_env / 'keyhold.sqlite3'}"


def test_a_relative_instance_path_is_taken_from_the_working_directory(
    clean_env, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEYHOLD_INSTANCE_PATH", "state")
    app = create_app()
    assert app.instance_path == str(tmp_path / "state")
    assert (tmp_path / "state" / "encryption_secret").exists()
    assert (
        app.config["SQLALCHEMY_DATABASE_URI"]
        == f"sqlite:///{tmp_path / 'state' / 'keyhold.sqlite3'}"
    )


def test_each_generated_secret_says_what_losing_it_means(clean_env, caplog):
    caplog.set_level(logging.WARNING)
    create_app()
    warnings = {r.secret: r.getMessage() for r in caplog.records if hasattr(r, "secret")}
    assert "signs everybody out" in warnings["SECRET_KEY"]
    assert "unreadable" not in warnings["SECRET_KEY"]  # it signs sessions, it encrypts nothing
    assert "stored key unreadable" in warnings["API_KEY_ENCRYPTION_SECRET"]


def test_production_refuses_to_start_without_secrets(clean_env, monkeypatch):
    monkeypatch.setenv("KEYHOLD_ENV", "production")
    # Every missing secret in one message, not one per attempt.
    with pytest.raises(ConfigError, match="SECRET_KEY and API_KEY_ENCRYPTION_SECRET are not set"):
        create_app()
    monkeypatch.setenv("SECRET_KEY", "too-short")
    with pytest.raises(ConfigError) as refused:
        create_app()
    assert "API_KEY_ENCRYPTION_SECRET is not set" in str(refused.value)
    assert "SECRET_KEY must be at least 32 characters" in str(refused.value)
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    with pytest.raises(ConfigError, match="API_KEY_ENCRYPTION_SECRET is not set"):
        create_app()
    assert not (clean_env / "encryption_secret").exists()
    monkeypatch.setenv("API_KEY_ENCRYPTION_SECRET", "e" * 40)
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_short_secret_is_refused(clean_env, monkeypatch):
    monkeypatch.setenv("API_KEY_ENCRYPTION_SECRET", "too-short")
    with pytest.raises(ConfigError, match="at least 32 characters"):
        create_app()


def test_a_secret_of_spaces_is_refused_as_a_short_one(clean_env, monkeypatch):
    monkeypatch.setenv("KEYHOLD_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", " " * 40)
    monkeypatch.setenv("API_KEY_ENCRYPTION_SECRET", "\t" * 20 + "e" * 8 + " " * 20)
    with pytest.raises(ConfigError) as refused:
        create_app()
    for name in SECRET_NAMES:
        assert f"{name} must be at least 32 characters long, not counting spaces" in str(
            refused.value
        )


def test_one_secret_for_both_purposes_is_refused(clean_env, monkeypatch):
    monkeypatch.setenv("KEYHOLD_ENV", "production")
    shared = "one-secret-for-everything-" + "x" * 30
    monkeypatch.setenv("SECRET_KEY", shared)
    monkeypatch.setenv("API_KEY_ENCRYPTION_SECRET", shared + "\n")
    with pytest.raises(ConfigError, match="are the same: each protects something else"):
        create_app()
    monkeypatch.setenv("API_KEY_ENCRYPTION_SECRET", "another-secret-for-keys-" + "y" * 30)
    assert create_app().config["KEYHOLD_ENV"] == "production"


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "API_KEY_ENCRYPTION_SECRET", "API_KEY_ENCRYPTION_OLD_SECRETS"]
)
def test_a_secret_that_is_not_utf8_is_refused_by_name(clean_env, monkeypatch, name):
    # Bytes the environment held in another encoding, as Python hands them over.
    latin1 = os.fsdecode("a secret of forty or more bytes, in Latin-1: caf\xe9".encode("latin-1"))
    monkeypatch.setenv(name, latin1)
    with pytest.raises(ConfigError, match=f"{name} holds bytes that are not UTF-8") as refused:
        create_app()
    assert "caf" not in refused.value.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_is_normalised(url, expected):
    assert normalise_database_url(url) == expected


def test_production_without_database_url_says_which_file_it_uses(clean_env, monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("KEYHOLD_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("API_KEY_ENCRYPTION_SECRET", "e" * 40)
    create_app()
    expected = f"DATABASE_URL is not set: using the SQLite file {clean_env / 'keyhold.sqlite3'}"
    assert expected in caplog.text
    caplog.clear()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{clean_env / 'chosen.sqlite3'}")
    create_app()
    assert "DATABASE_URL is not set" not in caplog.text


def test_development_without_database_url_says_nothing_of_it(clean_env, caplog):
    caplog.set_level(logging.WARNING)
    create_app()
    assert "DATABASE_URL" not in caplog.text


def test_provider_base_urls_from_environment(clean_env, monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("PROVIDER_OPENAI_BASE_URL", "http://127.0.0.1:8900/openai/v1")
    monkeypatch.setenv("PROVIDER_GROQ_BASE_URL", "")
    app = create_app()
    assert app.config["PROVIDER_BASE_URLS"] == {"openai": "http://127.0.0.1:8900/openai/v1"}
    assert "BASE_URL is ignored" not in caplog.text


@pytest.mark.parametrize("provider", ["azure_openai", "custom"])
def test_a_base_url_for_a_user_given_endpoint_is_not_read(clean_env, monkeypatch, caplog, provider):
    # These providers are checked at the endpoint each user gives: the variable would do
    # nothing, so the operator is told instead of left to believe it routes anything.
    caplog.set_level(logging.WARNING)
    variable = f"PROVIDER_{provider.upper()}_BASE_URL"
    monkeypatch.setenv(variable, "http://127.0.0.1:8900/gateway")
    app = create_app()
    assert provider not in app.config["PROVIDER_BASE_URLS"]
    assert f"{variable} is ignored" in caplog.text and "endpoint each user gives" in caplog.text


@pytest.mark.parametrize("env", ["prod", "staging", "dev"])
def test_an_unknown_environment_stops_start_up(clean_env, monkeypatch, env):
    monkeypatch.setenv("KEYHOLD_ENV", env)
    with pytest.raises(ConfigError, match=f"KEYHOLD_ENV is '{env}'.*development, production"):
        create_app()
    assert not (clean_env / "encryption_secret").exists()  # nothing was generated


def _run(args: list[str], tmp_path, **env: str) -> subprocess.CompletedProcess:
    """Start Keyhold the way an operator does, in a fresh interpreter."""
    environ = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES}
    environ.pop("DATABASE_URL", None)
    environ.update(KEYHOLD_INSTANCE_PATH=str(tmp_path / "instance"), **env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )


def test_the_generated_secret_warning_is_in_the_configured_log_format(tmp_path):
    started = _run(
        ["-c", "from webapp import create_app; create_app()"],
        tmp_path,
        LOG_FORMAT="json",
        PROVIDER_CUSTOM_BASE_URL="https://gateway.example/v1",  # warned about, in JSON too
    )
    assert started.returncode == 0, started.stderr
    lines = [json.loads(line) for line in started.stderr.splitlines()]  # every line is JSON
    generated = [line["secret"] for line in lines if line.get("event") == "config.secret_generated"]
    assert generated == list(SECRET_NAMES)
    assert any("PROVIDER_CUSTOM_BASE_URL is ignored" in line["message"] for line in lines)


@pytest.mark.parametrize(
    "entry",
    [
        ["--app", "webapp"],
        ["--app", "wsgi.py"],
        [],  # a bare `flask` in the checkout finds wsgi.py itself
    ],
)
def test_a_flask_command_reports_missing_secrets_without_a_traceback(tmp_path, entry):
    started = _run(["-m", "flask", *entry, "routes"], tmp_path, KEYHOLD_ENV="production")
    assert started.returncode == 1
    assert "Error: Keyhold cannot start:" in started.stderr
    assert all(name in started.stderr for name in SECRET_NAMES)
    assert "Traceback" not in started.stderr


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["db", "upgrade"], "Connection refused"),
        (["keys", "rotate-secret"], "Connection refused"),
        (["setup-token"], "Connection refused"),
    ],
)
def test_a_command_says_why_it_cannot_reach_the_database(tmp_path, command, says):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once it is closed
    url = f"postgresql://keyhold:hunter22@127.0.0.1:{port}/keyhold"
    ran = _run(["-m", "flask", "--app", "webapp", *command], tmp_path, DATABASE_URL=url)
    assert ran.returncode == 1
    assert "Error: Keyhold cannot reach its database (DATABASE_URL):" in ran.stderr
    assert says in ran.stderr and f"port {port}" in ran.stderr
    assert "Traceback" not in ran.stderr and "hunter22" not in ran.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "rotate-secret"],
        ["keys", "revalidate"],
        ["audit", "verify"],
        ["setup-token"],
        ["setup-token", "--first-start"],
    ],
)
def test_a_command_on_a_database_without_tables_says_to_migrate(tmp_path, empty_database, command):
    ran = _run(["-m", "flask", "--app", "webapp", *command], tmp_path, DATABASE_URL=empty_database)
    assert ran.returncode == 1
    assert "Error: The database (DATABASE_URL) does not hold the tables" in ran.stderr
    assert "flask --app webapp db upgrade" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_gunicorn_gets_the_message_it_prints_and_stops_on(clean_env, monkeypatch):
    # gunicorn shows an AppImportError's message alone and halts instead of restarting workers.
    monkeypatch.setenv("KEYHOLD_ENV", "production")
    with pytest.raises(AppImportError, match="SECRET_KEY and API_KEY_ENCRYPTION_SECRET"):
        runpy.run_path(str(ROOT / "wsgi.py"))


@pytest.mark.parametrize("value", ["ture", "enabled", "Y"])
def test_an_on_off_setting_that_is_neither_stops_start_up(clean_env, monkeypatch, value):
    # A typo must not quietly turn the Secure cookie flag (and HSTS) off in production.
    monkeypatch.setenv("SESSION_COOKIE_SECURE", value)
    with pytest.raises(ConfigError, match=f"SESSION_COOKIE_SECURE must be on or off.*'{value}'"):
        create_app()


@pytest.mark.parametrize(("value", "secure"), [("off", False), (" Yes ", True), ("0", False)])
def test_on_off_settings_take_the_usual_words(clean_env, monkeypatch, value, secure):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", value)
    assert create_app().config["SESSION_COOKIE_SECURE"] is secure


@pytest.mark.parametrize(
    ("name", "value"),
    [("RATELIMIT_LOGIN_IP", "10/minut"), ("RATELIMIT_DEFAULT", "lots"), ("RATELIMIT_TOKEN", ";")],
)
def test_a_rate_limit_that_does_not_parse_stops_start_up(clean_env, monkeypatch, name, value):
    # Flask-Limiter would drop it and serve on without that limit (sign-in guesses unbounded).
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"Not a rate limit: {name}='{value}'"):
        create_app()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VALIDATION_TIMEOUT", "nan"),  # every check would fail inside the HTTP client
        ("VALIDATION_TIMEOUT", "inf"),
        ("VALIDATION_TIMEOUT", "0"),  # every check "times out": a rejected key gets stored
        ("VALIDATION_CONNECT_TIMEOUT", "-1"),
        ("VALIDATION_MAX_WORKERS", "0"),
        ("MAX_CONTENT_LENGTH", "0"),  # every form, sign-in included, would be too large
        ("TRUSTED_PROXIES", "-1"),
        ("DATABASE_CONNECT_TIMEOUT", "1"),  # psycopg would wait 2 s all the same
        ("LOGIN_FAILURE_WARN_AFTER", "0"),
    ],
)
def test_a_number_setting_out_of_range_stops_start_up(clean_env, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"Out of range: {name}="):
        create_app()


@pytest.mark.parametrize("value", ["jsonl", "yaml"])
def test_a_log_format_keyhold_does_not_write_stops_start_up(clean_env, monkeypatch, value):
    monkeypatch.setenv("LOG_FORMAT", value)
    with pytest.raises(ConfigError, match=f"LOG_FORMAT must be text or json, got '{value}'"):
        create_app()


def test_the_log_format_is_read_as_a_word(clean_env, monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", " JSON ")
    assert create_app().config["LOG_FORMAT"] == "json"


def test_a_new_sqlite_database_is_its_owners_alone(clean_env, tmp_path, monkeypatch):
    # Password hashes, sealed keys and the audit trail: not for other accounts on the machine.
    app = create_app()
    with app.app_context():
        db.create_all()
    for path in clean_env.glob("keyhold.sqlite3*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    elsewhere = tmp_path / "data" / "keys.db"
    elsewhere.parent.mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{elsewhere}")
    create_app()
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600


def test_number_settings_in_range_are_taken(clean_env, monkeypatch):
    monkeypatch.setenv("VALIDATION_TIMEOUT", "2.5")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "131072")
    config = create_app().config
    assert (config["VALIDATION_TIMEOUT"], config["MAX_CONTENT_LENGTH"]) == (2.5, 131072)


def test_an_emptied_development_secret_file_is_a_clear_error(clean_env):
    create_app()
    (clean_env / "encryption_secret").write_text("\n")
    with pytest.raises(ConfigError, match="encryption_secret is empty: restore it from a backup"):
        create_app()


def test_a_development_secret_saved_by_an_editor_with_a_bom_is_the_same_secret(clean_env):
    create_app()
    path = clean_env / "encryption_secret"
    secret = path.read_text().strip()
    path.write_bytes(b"\xef\xbb\xbf" + secret.encode() + b"\r\n")
    assert create_app().config["API_KEY_ENCRYPTION_SECRET"] == secret


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda path: path.write_bytes(b"\xff\xfe" + "secret".encode("utf-16-le")), "is not text"),
        (lambda path: path.mkdir(), "cannot be read"),
    ],
    ids=["utf-16", "directory"],
)
def test_a_development_secret_file_that_cannot_be_read_is_a_clear_error(clean_env, make, says):
    clean_env.mkdir(parents=True, exist_ok=True)
    make(clean_env / "secret_key")
    with pytest.raises(ConfigError, match=f"secret_key {says}") as refused:
        create_app()
    assert "SECRET_KEY in the environment" in refused.value.message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not a url", "DATABASE_URL is not a database URL"),
        ("mysql://keyhold:hunter22@db/keyhold", "DATABASE_URL names 'mysql'"),
        ("postgresql+psycopg2://keyhold:hunter22@db/keyhold", r"names 'postgresql\+psycopg2'"),
        ("postgresql://keyhold:hunter22@db:54a32/keyhold", "DATABASE_URL is not a database URL"),
    ],
)
def test_a_database_keyhold_cannot_use_stops_start_up(clean_env, monkeypatch, url, says):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError, match=says) as refused:
        create_app()
    assert "hunter22" not in refused.value.message  # a URL's password stays out of logs


@pytest.mark.parametrize(
    "uri",
    [
        "redis//127.0.0.1:6379",
        "reddis://127.0.0.1:6379",
        "memcached://127.0.0.1:11211",
        "",
        "redis://:secret@[::1/0",  # a bracket that does not close
        "redis+sentinel://127.0.0.1:26379",  # no service name, here or in the options
        "async+memory://",  # opens, but only for asyncio servers: Flask-Limiter asserts on it
        "async+redis://127.0.0.1:6379/0",
    ],
)
def test_a_rate_limit_store_that_cannot_be_opened_stops_start_up(clean_env, monkeypatch, uri):
    # Flask-Limiter would fail every request on it, or serve with limits no other worker sees.
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", uri)
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI .* write it like redis://"):
        create_app()


def test_a_store_completed_by_its_storage_options_is_accepted():
    # As Flask-Limiter opens it: the URI with RATELIMIT_STORAGE_OPTIONS. (Checked on its own:
    # the app's one limiter keeps every options it was given, for every app made after.)
    uri = "redis+sentinel://127.0.0.1:26379"
    check_storage_uri(uri, {"service_name": "mymaster"})
    with pytest.raises(ConfigError):
        check_storage_uri(uri)


def test_a_rate_limit_store_error_keeps_its_password_out(clean_env, monkeypatch):
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "rediss//:hunter22@cache:6379")
    with pytest.raises(ConfigError) as refused:
        create_app()
    assert "hunter22" not in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "api.openai.com/v1",  # no scheme: read as a path
        "ftp://api.example.com/v1",
        "https:///v1",
        "https://api.example.com/v1?key=1",
        "https://api.example.com/v1#top",
        "https://user:secret@api.example.com/v1",
        "https://api.example.com:99999/v1",
    ],
)
def test_a_provider_base_url_that_is_not_one_stops_start_up(clean_env, monkeypatch, url):
    monkeypatch.setenv("PROVIDER_OPENAI_BASE_URL", url)
    with pytest.raises(ConfigError, match=r"Not a base URL: PROVIDER_OPENAI_BASE_URL\.") as refused:
        create_app()
    assert "secret" not in refused.value.message


def test_a_command_on_a_database_another_process_keeps_locked_says_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'busy.sqlite3'}"
    migrated = _run(["-m", "flask", "--app", "webapp", "db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    holder = sqlite3.connect(tmp_path / "busy.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # a long write elsewhere, past the wait
        ran = _run(["-m", "flask", "--app", "webapp", "setup-token"], tmp_path, DATABASE_URL=url)
    finally:
        holder.close()
    assert ran.returncode == 1
    assert "Error: The database (DATABASE_URL) is busy" in ran.stderr
    assert "Nothing was changed; try again in a moment." in ran.stderr
    assert "Traceback" not in ran.stderr
