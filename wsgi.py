"""WSGI entry point: ``gunicorn wsgi:app``."""

from gunicorn.errors import AppImportError

from webapp import create_app
from webapp.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # gunicorn prints an AppImportError's message alone and stops, instead of logging a
    # traceback from every worker it starts.
    raise AppImportError(exc.message) from None
