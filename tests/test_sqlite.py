"""SQLite as Keyhold ships it for one machine: saves are not held up by readers.

These tests build their own SQLite file whatever database the suite runs on,
since they are about that engine alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from flask import Flask

from tests.conftest import PASSWORD, base_config
from tests.fakekeys import fake_key
from webapp import create_app
from webapp.auth.services import find_user, register
from webapp.extensions import db
from webapp.keys import service, statuses


@pytest.fixture
def sqlite_app(tmp_path) -> Iterator[tuple[Flask, Path]]:
    path = tmp_path / "keyhold.sqlite3"
    app = create_app(base_config(f"sqlite:///{path}"))
    with app.app_context():
        db.create_all()
        register("first@example.com", PASSWORD)
    yield app, path
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _users(connection: sqlite3.Connection) -> int:
    return connection.execute("SELECT count(*) FROM users").fetchone()[0]


def test_a_save_goes_through_while_another_connection_is_reading(sqlite_app):
    app, path = sqlite_app
    # Another process with a read open: a long export, a backup, a rotation batch.
    with closing(sqlite3.connect(path, isolation_level=None)) as reader:
        reader.execute("BEGIN")
        assert _users(reader) == 1
        with app.app_context():
            # Each of these commits; in SQLite's default journal mode the commit would wait
            # for the reader and fail with "database is locked".
            register("second@example.com", PASSWORD)
            service.store_key(find_user("second@example.com"), "openai", fake_key("openai"), {})
        assert _users(reader) == 1, "an open read keeps one consistent view"
        reader.execute("COMMIT")
        assert _users(reader) == 2
    with app.app_context():
        stored = statuses.list_status(find_user("second@example.com"))
        assert [s.provider for s in stored if s.has_key] == ["openai"]


def test_the_file_keeps_a_write_ahead_log(sqlite_app):
    _, path = sqlite_app
    with closing(sqlite3.connect(path)) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
