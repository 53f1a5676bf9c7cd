"""The checked-in migrations build exactly the schema the models describe."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text

from tests.conftest import PASSWORD, base_config
from webapp import create_app
from webapp.auth.services import register
from webapp.extensions import db


def _schema_diff(app) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_migrations_match_models_and_round_trip(empty_database):
    app = create_app(base_config(empty_database))
    with app.app_context():
        try:
            upgrade()
            assert _schema_diff(app) == []
            tables = set(inspect(db.engine).get_table_names())
            assert {"users", "user_api_keys", "global_api_keys", "audit_events"} <= tables
            downgrade(revision="base")
            assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
            upgrade()
            assert _schema_diff(app) == []
        finally:
            db.session.remove()
            db.engine.dispose()


def _sqlite_rows(path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def test_sqlite_upgrade_keeps_keys_drops_leftovers_and_never_reuses_ids(tmp_path):
    # SQLite's own engine whatever the suite runs on: the migration does its work only there.
    path = tmp_path / "upgrade.sqlite3"
    app = create_app(base_config(f"sqlite:///{path}"))
    with app.app_context():
        try:
            upgrade(revision="0002_access_tokens")
            # What an older build left: users 1-3 (3 deleted without its keys, as SQLite
            # did without foreign keys), and an audit row naming user 4, deleted before.
            with closing(sqlite3.connect(path)) as conn, conn:
                for uid in (1, 2, 3):
                    conn.execute(
                        "INSERT INTO users (id, email, password_hash, is_admin, session_token,"
                        " created_at) VALUES (?, ?, 'x', 0, 't', '2026-01-01 00:00:00')",
                        (uid, f"u{uid}@example.com"),
                    )
                    conn.execute(
                        "INSERT INTO user_api_keys (user_id, provider, encrypted_key, key_hash,"
                        " key_hint, key_version, config, status, models, details, created_at,"
                        " updated_at) VALUES (?, 'openai', 'c', 'h', 'x', 'v', '{}', 'unchecked',"
                        " '[]', '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                        (uid,),
                    )
                conn.execute(
                    "INSERT INTO audit_events (occurred_at, actor_user_id, subject_user_id,"
                    " action, outcome, details, prev_hash, row_hash) VALUES"
                    " ('2026-01-01 00:00:00', 4, 4, 'user.register', 'ok', '{}', 'p', 'r')"
                )
                conn.execute("DELETE FROM users WHERE id = 3")
            upgrade()
            assert _sqlite_rows(path, "SELECT user_id FROM user_api_keys ORDER BY user_id") == [
                (1,),
                (2,),
            ]
            assert register("new@example.com", PASSWORD).id == 5
            # Foreign keys are enforced again on the app's connections.
            with db.engine.begin() as conn:
                conn.execute(text("DELETE FROM users WHERE id = 1"))
            assert _sqlite_rows(path, "SELECT user_id FROM user_api_keys") == [(2,)]
        finally:
            db.session.remove()
            db.engine.dispose()
