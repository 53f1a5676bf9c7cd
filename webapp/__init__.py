"""Keyhold: a bring-your-own-key vault for LLM provider API keys."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, flash, redirect, request, url_for
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.config import (
    announce_default_database,
    load_config,
    load_secrets,
    warn_about_ignored_settings,
)
from webapp.crypto import Keyring, old_secrets
from webapp.extensions import (
    configure_sqlite,
    csrf,
    db,
    limiter,
    login_manager,
    migrate,
)
from webapp.ratelimit import retry_after_only_when_refused

ROOT = Path(__file__).resolve().parent.parent

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def create_app(config_overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        # Flask wants it absolute; a relative one is taken from the working directory.
        instance_path=os.path.abspath(
            os.environ.get("KEYHOLD_INSTANCE_PATH") or str(ROOT / "instance")
        ),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    # A path with doubled slashes is not found rather than redirected (308, method kept) to
    # the path with them merged: "DELETE /api/api-keys//" must not become a delete of every
    # key, and no other call should change meaning by losing a segment either.
    app.url_map.merge_slashes = False
    load_config(app, config_overrides)
    configure_logging(app)  # before anything logs, so every line is in the configured format
    warn_about_ignored_settings()
    announce_default_database(app)
    load_secrets(app)
    register_proxy_fix(app)
    register_extensions(app)
    register_blueprints(app)
    register_access_tokens(app)
    register_errorhandlers(app)
    register_cli(app)
    register_security_headers(app)
    register_template_helpers(app)
    return app


def configure_logging(app: Flask) -> None:
    from webapp.logs import configure

    configure(app)


def register_proxy_fix(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXIES"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_extensions(app: Flask) -> None:
    import webapp.models  # noqa: F401  (registers every table)
    from webapp.auth.models import User
    from webapp.auth.services import load_session_user

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    # after_request functions run last-registered first: this one runs after Flask-Limiter's.
    app.after_request(retry_after_only_when_refused)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.login_message_category = "info"
    # "basic": a session seen from another address or browser is marked not fresh, not ended.
    # Flask-Login's "strong" binds it to the client's X-Forwarded-For (which the client
    # writes) and User-Agent: no barrier to a thief, but every change of network (Wi-Fi to
    # mobile, a VPN) signed users out and threw away "Keep me signed in". What ends a
    # session is its row on the server: logging out, a password change, its lifetime.
    login_manager.session_protection = "basic"
    app.extensions["keyhold_keyring"] = Keyring(
        app.config["API_KEY_ENCRYPTION_SECRET"],
        old_secrets(app.config["API_KEY_ENCRYPTION_OLD_SECRETS"]),
    )

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return load_session_user(user_id)

    @login_manager.unauthorized_handler
    def unauthorized():
        from webapp.errors import error_response, wants_json

        if wants_json():
            return error_response(401)
        flash(login_manager.login_message, login_manager.login_message_category)
        # Back to this page after signing in, if it is one: a button's POST-only URL would
        # answer the redirected GET with a 405, so those lead to the dashboard instead.
        rule = request.url_rule
        if rule is None or "GET" not in (rule.methods or ()):
            return redirect(url_for("auth.login"))
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def register_blueprints(app: Flask) -> None:
    from webapp.admin.routes import bp as admin_bp
    from webapp.api.routes import bp as api_bp
    from webapp.audit.routes import api_bp as audit_api_bp
    from webapp.audit.routes import bp as audit_bp
    from webapp.auth.routes import bp as auth_bp
    from webapp.health import bp as health_bp
    from webapp.keys.routes import bp as keys_bp
    from webapp.setup.routes import bp as setup_bp
    from webapp.validation.routes import bp as validation_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(setup_bp)  # first: its gate runs before every other view
    app.register_blueprint(auth_bp)
    app.register_blueprint(keys_bp)
    app.register_blueprint(validation_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(audit_bp)
    app.register_blueprint(audit_api_bp)

    @app.get("/")
    def index():
        return redirect(url_for("keys.dashboard"))


def register_access_tokens(app: Flask) -> None:
    from webapp.tokens import bearer
    from webapp.tokens.api import bp as tokens_api_bp
    from webapp.tokens.routes import bp as tokens_bp

    bearer.init_app(app)
    app.register_blueprint(tokens_bp)
    app.register_blueprint(tokens_api_bp)


def register_errorhandlers(app: Flask) -> None:
    from webapp.errors import register_errorhandlers as register

    register(app)


def register_cli(app: Flask) -> None:
    from webapp.cli import register

    register(app)


def register_security_headers(app: Flask) -> None:
    secure = app.config["SESSION_COOKIE_SECURE"]

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def register_template_helpers(app: Flask) -> None:
    from webapp.templating import register

    register(app)
