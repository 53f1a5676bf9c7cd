"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging
import threading

from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from webapp.extensions import db, limiter

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

#: seconds /readyz waits for the database to answer before calling it unready
PROBE_TIMEOUT = 3.0
#: held while a probe of the database is out; a probe still waiting means it does not answer
_probe_out = threading.Lock()


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """The process is up and serving requests."""
    return jsonify(status="ok")


def _revisions(app: Flask) -> tuple[frozenset[str], frozenset[str]]:
    """The migrations' heads and every revision this code knows, read once per app."""
    found = app.extensions.get("keyhold_revisions")
    if found is None:
        script = ScriptDirectory(app.extensions["migrate"].directory)
        heads = frozenset(script.get_heads())
        known = frozenset(r.revision for r in script.walk_revisions())
        found = app.extensions["keyhold_revisions"] = (heads, known)
    return found


def _schema(app: Flask) -> str:
    """``current``; ``behind`` (a migration this code needs is not applied); ``missing``
    (no tables: ``flask db upgrade`` never ran); or ``newer`` (migrated by a later release,
    as during a rolling upgrade: this code may still serve)."""
    heads, known = _revisions(app)
    try:
        applied = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:
        return "missing"
    if not applied:
        return "missing"
    if applied == heads:
        return "current"
    return "behind" if applied <= known else "newer"


def _probe(app: Flask, answer: dict[str, str]) -> None:
    try:
        with app.app_context():
            try:
                db.session.execute(text("SELECT 1"))
            except SQLAlchemyError as exc:
                log.warning("readiness check failed: %s", type(exc).__name__)
            else:
                answer["schema"] = _schema(app)
            finally:
                db.session.remove()
    finally:
        _probe_out.release()


def database_state() -> str | None:
    """The schema's state (see ``_schema``) if the database answers within PROBE_TIMEOUT,
    else None.

    Asked in a thread of its own: a database that accepts connections and then never
    replies would otherwise hold the probe (and, probe after probe, every thread of the
    worker). While one probe is still out, the next ones say "not ready" at once.
    """
    if not _probe_out.acquire(blocking=False):
        return None
    answer: dict[str, str] = {}
    worker = threading.Thread(
        target=_probe, args=(current_app._get_current_object(), answer), daemon=True
    )
    worker.start()  # it releases _probe_out when the database has answered, however late
    worker.join(PROBE_TIMEOUT)
    if worker.is_alive():
        log.warning("readiness check: the database did not answer within %g s", PROBE_TIMEOUT)
    return answer.get("schema")


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """The process can reach its database, and its tables are those this code needs."""
    schema = database_state()
    if schema is None:
        return jsonify(status="unavailable", database="unreachable"), 503
    if schema in ("missing", "behind"):
        log.warning("readiness check: the database schema is %s; run flask db upgrade", schema)
        return jsonify(status="unavailable", database="ok", schema=schema), 503
    return jsonify(status="ok", database="ok", schema=schema)
