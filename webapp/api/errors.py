"""Errors the JSON API raises itself; every one is answered by ``webapp.errors.error_response``."""

from __future__ import annotations

from flask import Blueprint

from webapp.errors import error_response


class ApiError(Exception):
    """A request the API refuses before any service sees it."""

    def __init__(
        self, status: int, code: str, message: str, fields: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


def malformed(message: str) -> ApiError:
    return ApiError(400, "malformed_json", message)


def invalid_body(fields: dict[str, str], message: str = "The request body has errors.") -> ApiError:
    return ApiError(400, "invalid_body", message, fields)


def register(bp: Blueprint) -> None:
    """What every blueprint under /api shares: its own errors as JSON, and no caching."""

    @bp.after_request
    def not_cached(response):
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.fields)
