"""Fixtures: an app on a clean database, clients that behave like browsers, auth helpers.

The database comes from ``DATABASE_URL`` when set (CI runs the suite on
PostgreSQL that way), else a SQLite file in a temporary folder. Tables are
created once per run and emptied after every test.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import stamp
from sqlalchemy import create_engine, make_url, text

from tests.emulator import Emulator
from webapp import create_app
from webapp.extensions import db
from webapp.providers.client import close_provider_http
from webapp.setup import service as setup_service

SECRET = "test-encryption-secret-" + "s" * 32
PASSWORD = "correct horse battery staple"
ADMIN_EMAIL = "admin@example.com"
_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def database_url(tmp_dir: Path) -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_dir / 'test.sqlite3'}"


def base_config(db_url: str, **extra) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-" + "k" * 32,
        "API_KEY_ENCRYPTION_SECRET": SECRET,
        "API_KEY_ENCRYPTION_OLD_SECRETS": "",
        "SQLALCHEMY_DATABASE_URI": db_url,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "KEYHOLD_ENV": "testing",
        # The emulator answers as each provider's own host does: it refuses unknown keys.
        "PROVIDER_BASE_URLS_CHECK_KEYS": True,
    }
    config.update(extra)
    return config


class BrowserClient(FlaskClient):
    """A test client that sends the CSRF token the way a browser form or the frontend does.

    Form posts get a ``csrf_token`` field and JSON requests an ``X-CSRFToken``
    header, taken from the page's ``<meta name="csrf-token">``. Pass
    ``csrf=False`` to send a request without one.
    """

    def csrf_token(self) -> str:
        # Before setup the probe is redirected to /setup, which has the tag too.
        page = self.get("/__csrf-probe__", follow_redirects=True).get_data(as_text=True)
        match = _META_TOKEN.search(page)
        assert match, "no csrf meta tag on the page"
        return match.group(1)

    def open(self, *args, csrf: bool = True, **kwargs):
        method = (kwargs.get("method") or "GET").upper()
        if csrf and method not in ("GET", "HEAD", "OPTIONS"):
            if "json" in kwargs:
                headers = dict(kwargs.get("headers") or {})
                headers.setdefault("X-CSRFToken", self.csrf_token())
                kwargs["headers"] = headers
            else:
                data = kwargs.get("data")
                if data is None:
                    data = {}
                if isinstance(data, dict) and "csrf_token" not in data:
                    kwargs["data"] = {**data, "csrf_token": self.csrf_token()}
        return super().open(*args, **kwargs)


def _empty_tables() -> None:
    db.session.remove()
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(autouse=True)
def _push_request_context():
    """Replace pytest-flask's: a request context held open across a whole test
    would share ``g`` between the test's requests, which no browser does."""
    yield


@pytest.fixture
def empty_database(db_url, tmp_path) -> Iterator[str]:
    """A database of the suite's engine with nothing in it."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = f"keyhold_empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """The provider emulator on a loopback port, shared by the whole run."""
    server = Emulator().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_emulator(emulator) -> Iterator[None]:
    """Every test starts with no known keys, no faults and no recorded requests."""
    emulator.reset()
    yield
    emulator.reset()


@pytest.fixture(scope="session")
def db_url(tmp_path_factory) -> str:
    return database_url(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def _schema(db_url) -> Iterator[None]:
    app = create_app(base_config(db_url))
    with app.app_context():
        db.drop_all()
        db.create_all()
        stamp()  # the tables are the migrations' head: /readyz finds the schema current
        db.engine.dispose()
    yield
    with app.app_context():
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def make_app(db_url, _schema, tmp_path, emulator):
    """Build apps on the shared test database; each is cleaned up after the test.

    Every fixed-URL provider points at the emulator (a test's own
    PROVIDER_BASE_URLS entries win), so no test reaches the internet.

    Apps come up with setup finished: an admin account (``ADMIN_EMAIL``,
    ``PASSWORD``) is created through the setup service if there is none.
    ``fresh=True`` leaves the instance untouched, as on a first start. The
    setup token file goes to the test's temporary folder.
    """
    apps: list[Flask] = []

    def factory(*, fresh: bool = False, **overrides) -> Flask:
        overrides["PROVIDER_BASE_URLS"] = {
            **emulator.base_urls(),
            **overrides.get("PROVIDER_BASE_URLS", {}),
        }
        overrides.setdefault("SETUP_TOKEN_FILE", str(tmp_path / "setup-token"))
        app = create_app(base_config(db_url, **overrides))
        app.test_client_class = BrowserClient
        apps.append(app)
        if not fresh:
            with app.app_context():
                if not setup_service.admin_exists():
                    setup_service.create_admin(ADMIN_EMAIL, PASSWORD)
                db.session.remove()
        return app

    yield factory
    for app in apps:
        close_provider_http(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if apps:
        with apps[0].app_context():
            _empty_tables()
            db.engine.dispose()


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app) -> BrowserClient:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client: BrowserClient) -> None:
        self.client = client

    def register(self, email: str = "alice@example.com", password: str = PASSWORD):
        return self.client.post(
            "/auth/register", data={"email": email, "password": password, "confirm": password}
        )

    def login(self, email: str = "alice@example.com", password: str = PASSWORD, **extra):
        return self.client.post("/auth/login", data={"email": email, "password": password, **extra})

    def logout(self):
        return self.client.post("/auth/logout")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def user_client(app):
    """A new browser for a new user: ``user_client("bob@example.com")`` is registered and in."""

    def factory(email: str) -> BrowserClient:
        c = app.test_client()
        response = AuthActions(c).register(email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return c

    return factory


@pytest.fixture
def admin_client(app) -> BrowserClient:
    """A browser signed in as the admin the ``app`` fixture created."""
    c = app.test_client()
    response = AuthActions(c).login(ADMIN_EMAIL)
    assert response.status_code == 302, response.get_data(as_text=True)
    return c
