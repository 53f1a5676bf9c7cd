"""Every action the audit trail knows, with the words the activity pages use for it.

``audit.service.record`` refuses an action that is not listed here, so the
filters on the activity pages and ``GET /api/audit`` can offer the complete
list, and a misspelt action fails the test that reaches it instead of
writing rows nobody can find.
"""

from __future__ import annotations

ACTIONS: dict[str, str] = {
    "user.register": "Account created",
    "user.purge": "Account and its keys deleted",
    "auth.login": "Sign-in",
    "auth.logout": "Sign-out",
    "auth.password_change": "Password change",
    "auth.confirm": "Password confirmed",
    "key.set": "Key added",
    "key.replace": "Key replaced",
    "key.delete": "Key deleted",
    "key.clear_all": "All keys deleted",
    "key.validate": "Key checked with its provider",
    "key.expiry": "Expiry reminder changed",
    "global_key.set": "Global key added",
    "global_key.replace": "Global key replaced",
    "global_key.delete": "Global key deleted",
    "global_key.fallback": "Global key fallback switched",
    "setup.token_issued": "Setup token issued",
    "setup.token_accepted": "Setup token accepted",
    "setup.complete": "Setup completed",
    "admin.create": "Admin account created",
    "secret.rotate": "Keys re-encrypted under a new secret",
    "secret.rotate_finished": "Re-encryption under a new secret finished",
    "access.denied": "Access refused",
    "ratelimit.hit": "Too many requests",
    "token.create": "Access token created",
    "token.rotate": "Access token rotated",
    "token.revoke": "Access token revoked",
    "token.resolve": "Key handed to an access token",
    "token.auth_failed": "Access token refused",
    "audit.prune": "Old audit entries pruned",
}

#: the part before the dot: ``key`` for ``key.set``, ``key.delete``...
FAMILIES: frozenset[str] = frozenset(action.partition(".")[0] for action in ACTIONS)


def action_label(action: str) -> str:
    return ACTIONS.get(action, action)
