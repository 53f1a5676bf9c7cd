"""Every model, imported once so metadata (and migrations) see all tables."""

from webapp.audit.models import AuditCheckpoint, AuditEvent
from webapp.auth.models import LoginSession, User
from webapp.keys.models import GlobalAPIKey, UserAPIKey
from webapp.setup.models import SetupToken
from webapp.tokens.models import AccessToken

__all__ = [
    "AccessToken",
    "AuditCheckpoint",
    "AuditEvent",
    "GlobalAPIKey",
    "LoginSession",
    "SetupToken",
    "User",
    "UserAPIKey",
]
