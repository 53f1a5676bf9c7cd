"""What the key services refuse, each with a machine-readable ``code`` and an HTTP status.

Views show ``message`` (and ``fields``, per form field); the JSON API answers
``{"error": {"code", "message", "fields"}}`` with ``status``.
"""

from __future__ import annotations


class KeyServiceError(Exception):
    """A request the service refuses; ``code`` is machine-readable."""

    code = "error"
    status = 400

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class UnknownProvider(KeyServiceError):
    code = "unknown_provider"
    status = 404


class KeyNotFound(KeyServiceError):
    code = "key_not_found"
    status = 404


class KeyReplaced(KeyServiceError):
    """The key was replaced after the page asking to confirm was shown: nothing was done."""

    code = "key_replaced"
    status = 409


class KeyConflict(KeyServiceError):
    """Other requests changed the key at the same moment, twice over: nothing was saved."""

    code = "key_conflict"
    status = 409

    def __init__(self) -> None:
        super().__init__(
            "Another request changed this key at the same moment; nothing was saved. "
            "Please try again."
        )


class InvalidKeyInput(KeyServiceError):
    code = "invalid_input"
    status = 422


class KeyRejected(KeyServiceError):
    """The provider says the key is not a working key; nothing was stored."""

    code = "key_rejected"
    status = 422


class SignedOut(KeyServiceError):
    """The session (or the whole account) ended while the request was on its way; nothing
    was changed."""

    code = "unauthenticated"
    status = 401
