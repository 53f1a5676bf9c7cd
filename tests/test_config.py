"""Start-up configuration: zero-config development, strict production."""

from __future__ import annotations

import logging
import stat

import pytest

from webapp import create_app
from webapp.config import ConfigError, normalise_database_url


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("SECRET_KEY", "API_KEY_ENCRYPTION_SECRET", "KEYHOLD_ENV", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KEYHOLD_INSTANCE_PATH", str(tmp_path / "instance"))
    return tmp_path / "instance"


def test_development_generates_secrets_once(clean_env, caplog):
    caplog.set_level(logging.WARNING)
    app = create_app()
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


def test_production_refuses_to_start_without_secrets(clean_env, monkeypatch):
    monkeypatch.setenv("KEYHOLD_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        create_app()
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
