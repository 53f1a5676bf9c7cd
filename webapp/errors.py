"""Error pages and JSON errors: one place decides which a request gets."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from jinja2 import TemplateNotFound
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp.crypto import KeyDecryptionError
from webapp.extensions import db, login_manager
from webapp.keys.errors import KeyServiceError

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood.",
    401: "You need to log in first.",
    403: "You are not allowed to do that.",
    404: "There is nothing here.",
    405: "That method is not allowed here.",
    413: "The request is too large.",
    415: "Send the request body as JSON (Content-Type: application/json).",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. Nothing was changed.",
    503: "Keyhold cannot answer right now. Please try again shortly.",
}
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def wants_json() -> bool:
    if request.path == "/api" or request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return (
        best == "application/json"
        and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(
    status: int, code: str | None = None, message: str | None = None, fields: dict | None = None
):
    code = code or CODES.get(status, "error")
    message = message or MESSAGES.get(status, "The request failed.")
    if wants_json():
        body: dict = {"code": code, "message": message}
        if fields:
            body["fields"] = fields
        return jsonify(error=body), status
    if status >= 500 and "_login_user" not in g:
        # The page's menu asks who is signed in; when nobody has been looked up yet, that
        # would be the session's query, sent again to a database that just failed: the
        # error page would fail with it and reach the browser as a bare 500.
        g._login_user = login_manager.anonymous_user()
    try:
        return render_template(f"errors/{status}.html", message=message, status=status), status
    except TemplateNotFound:
        return render_template("errors/generic.html", message=message, status=status), status


def refuse_nul():
    """A NUL in the path, a query parameter or the User-Agent is a 400, before any view
    reads it.

    No browser sends one, and PostgreSQL cannot hold one as text: a filter
    looked up with it, or the audit row that keeps the path's provider name or the
    browser's User-Agent, would fail as a server error (gunicorn refuses such a header
    itself; other servers pass it on). JSON bodies are held to the same rule, and form
    fields by their forms, next to the field.
    """
    user_agent = request.headers.get("User-Agent", "")
    if "\x00" in request.path or "\x00" in user_agent:
        return error_response(400, "invalid_text", "The request holds a NUL character.")
    if any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        return error_response(400, "invalid_text", "A query parameter holds a NUL character.")
    return None


def register_errorhandlers(app: Flask) -> None:
    app.before_request(refuse_nul)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_response(
            400,
            "csrf_failed",
            "The form expired or did not come from this site. Reload the page and try again.",
        )

    @app.errorhandler(KeyServiceError)
    def service_error(exc: KeyServiceError):
        return error_response(exc.status, exc.code, exc.message, exc.fields)

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        if exc.statement is not None:
            raise exc  # a statement the database refused: a failure of ours, answered 500
        # No connection to the database (refused, or not answered in time): the request did
        # nothing, and trying again shortly is the right advice.
        db.session.rollback()
        log.error("database unreachable: %s", type(exc.orig).__name__ if exc.orig else exc)
        return error_response(503)

    @app.errorhandler(KeyDecryptionError)
    def decryption_error(exc: KeyDecryptionError):
        db.session.rollback()
        log.error("stored key unreadable: %s", exc)
        return error_response(
            500,
            "key_unreadable",
            "A stored key could not be decrypted. The operator has been notified; "
            "saving the key again will fix it.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        description = None if status in MESSAGES else exc.description
        response = error_response(status, message=description)
        if status == 405 and exc.get_response().headers.get("Allow"):
            body, code = response
            body = app.make_response((body, code))
            body.headers["Allow"] = exc.get_response().headers["Allow"]
            return body
        return response

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError):
        db.session.rollback()
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error(
                "unhandled %s on %s %s", type(original).__name__, request.method, request.path
            )
        return error_response(500)
