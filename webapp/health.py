"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging
import threading

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


def _probe(app: Flask, answer: dict[str, bool]) -> None:
    try:
        with app.app_context():
            try:
                db.session.execute(text("SELECT 1"))
                answer["ok"] = True
            except SQLAlchemyError as exc:
                log.warning("readiness check failed: %s", type(exc).__name__)
            finally:
                db.session.remove()
    finally:
        _probe_out.release()


def database_answers() -> bool:
    """Whether the database answers ``SELECT 1`` within PROBE_TIMEOUT.

    Asked in a thread of its own: a database that accepts connections and then never
    replies would otherwise hold the probe (and, probe after probe, every thread of the
    worker). While one probe is still out, the next ones say "not ready" at once.
    """
    if not _probe_out.acquire(blocking=False):
        return False
    answer: dict[str, bool] = {}
    worker = threading.Thread(
        target=_probe, args=(current_app._get_current_object(), answer), daemon=True
    )
    worker.start()  # it releases _probe_out when the database has answered, however late
    worker.join(PROBE_TIMEOUT)
    if worker.is_alive():
        log.warning("readiness check: the database did not answer within %g s", PROBE_TIMEOUT)
    return answer.get("ok", False)


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """The process can reach its database."""
    if not database_answers():
        return jsonify(status="unavailable", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
