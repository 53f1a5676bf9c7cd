"""Unbound extension objects; ``create_app`` binds them to an app."""

from __future__ import annotations

from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.orm import DeclarativeBase

from webapp.ratelimit import default_limit, default_rate_key, on_breach


class Base(DeclarativeBase):
    # Named constraints keep migrations portable between SQLite and PostgreSQL.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# The default limit and the breach handler are given here, not through config: Flask-Limiter
# keeps the first app's config values for good, and each app must get its own.
limiter = Limiter(key_func=default_rate_key, default_limits=[default_limit], on_breach=on_breach)


def configure_sqlite(engine: Engine) -> None:
    """Set up every SQLite connection: foreign keys honoured, and a write-ahead log.

    SQLite ignores foreign keys (ON DELETE CASCADE / SET NULL) unless each
    connection asks; without them, deleting a user left their keys and tokens
    behind for whoever got the id next. In its default journal mode a commit
    waits until no request is reading, and every read waits out a commit, so
    one long read (an export, a rotation batch) stalls every save behind it and
    a busy worker fails writes with "database is locked". The write-ahead log
    lets readers and one writer go on together, each reader on a consistent
    snapshot; it is a property of the file, kept once set (an in-memory
    database stays as it is).
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
