"""Who may use admin pages and endpoints: admins only, and refusals are audited."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import request
from flask_login import current_user, login_required

from webapp import monitoring
from webapp.audit.service import RequestInfo, record
from webapp.counters import first_refusal
from webapp.extensions import db
from webapp.keys.errors import KeyServiceError
from webapp.web import request_info

F = TypeVar("F", bound=Callable[..., Any])


class AdminOnly(KeyServiceError):
    code = "admin_only"
    status = 403


def require_admin(user: Any, what: str, *, info: RequestInfo | None = None) -> None:
    """Return if ``user`` is an admin; otherwise record the attempt and raise AdminOnly."""
    if getattr(user, "is_authenticated", False) and user.is_admin:
        return
    actor_id = user.id if getattr(user, "is_authenticated", False) else None
    who = f"user:{actor_id}" if actor_id is not None else f"ip:{info and info.ip}"
    # One row per person and page every AUDIT_EVERY: probing each admin page is on the record,
    # reloading one a thousand times is not a thousand writes. Each refusal is logged.
    if first_refusal("admin-only", f"{who}:{what}"):
        record(
            "access.denied",
            outcome="denied",
            actor_id=actor_id,
            info=info,
            details={"reason": "admin_only", "target": what},
        )
        db.session.commit()
    monitoring.access_denied(actor_id, info and info.ip, "admin_only", target=what)
    raise AdminOnly("Only an admin can do that.")


def admin_required(view: F) -> F:
    """Log in first (as login_required does), then be an admin."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_admin(current_user, request.endpoint or request.path, info=request_info())
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
