"""WSGI entry point: ``gunicorn wsgi:app`` (and ``flask``'s default app in this folder)."""

from gunicorn.errors import AppImportError

from webapp import create_app
from webapp.config import ConfigError


class StartRefused(AppImportError, ConfigError):
    """gunicorn prints an AppImportError's message alone and stops, instead of logging a
    traceback from every worker it starts; ``flask`` prints a ClickException's as one
    ``Error:`` line."""


try:
    app = create_app()
except ConfigError as exc:
    raise StartRefused(exc.message) from None
