"""Reading the audit trail: ``/activity`` (your own), ``/admin/audit`` (everyone's), ``/api/audit``.

Each shows the rows whose subject is the user (what was done to or by their
account), newest first, filtered by provider and action. Admins may name any
user, or everyone; access tokens with ``audit:read`` read their owner's rows
only, never anyone else's.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.admin.access import admin_required, require_admin
from webapp.api.body import fields, json_body, only_query
from webapp.api.errors import ApiError
from webapp.api.errors import register as register_api_errors
from webapp.api.payloads import iso
from webapp.audit import history
from webapp.audit.actions import ACTIONS, action_label
from webapp.audit.models import AuditEvent
from webapp.providers.catalog import all_providers
from webapp.tokens import authn, scopes
from webapp.tokens.bearer import current_token
from webapp.web import no_store, request_info

bp = Blueprint("audit", __name__)
api_bp = Blueprint("audit_api", __name__, url_prefix="/api")
register_api_errors(api_bp)

FILTERS = ("provider", "action", "before")
#: ``user`` value that asks for every user's rows (admins only)
EVERYONE = "*"


def _filter_args() -> dict[str, str]:
    return {name: request.args.get(name, "") for name in FILTERS}


def _history_page(
    template: str,
    subject_id: int | None,
    *,
    problems: dict[str, str] | None = None,
    extra_args: dict[str, str] | None = None,
    show_users: bool = False,
):
    """Render one page of events, or the filters' problems with 400.

    ``extra_args`` are further filters the page's links keep (the admin's
    ``user``); ``show_users`` adds the email addresses of the users named.
    """
    chosen = _filter_args()
    problems = dict(problems or {})
    page = None
    if not problems:
        try:
            limit = current_app.config["AUDIT_PAGE_SIZE"]
            page = history.list_events(history.parse_filter(subject_id, **chosen, limit=limit))
        except history.BadFilter as exc:
            problems = exc.fields
    events = page.events if page else []
    kept = {k: v for k, v in {**chosen, **(extra_args or {})}.items() if v}
    older = None
    if page and page.next_before:
        older = url_for(request.endpoint, **{**kept, "before": page.next_before})
    newest = None
    if chosen["before"]:
        newest = url_for(request.endpoint, **{k: v for k, v in kept.items() if k != "before"})
    body = render_template(
        template,
        events=events,
        chosen=chosen,
        problems=problems,
        older=older,
        newest=newest,
        emails=history.emails_of(events) if show_users else {},
        providers=all_providers(),
        actions=ACTIONS,
        action_label=action_label,
        extra_args=extra_args or {},
    )
    return body, 400 if problems else 200


@bp.get("/activity")
@login_required
@no_store
def activity():
    return _history_page("audit/activity.html", current_user.id)


@bp.get("/admin/audit")
@admin_required
@no_store
def admin_audit():
    who = request.args.get("user", "").strip()
    subject_id, problems = None, {}
    if who:
        try:
            subject_id = history.find_subject(who)
        except history.BadFilter as exc:
            problems = exc.fields
    return _history_page(
        "audit/admin.html",
        subject_id,
        problems=problems,
        extra_args={"user": who},
        show_users=True,
    )


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """What the API shows of a row: its content, not its chain hashes."""
    return {
        "id": event.id,
        "occurred_at": iso(event.occurred_at),
        "action": event.action,
        "label": action_label(event.action),
        "outcome": event.outcome,
        "provider": event.provider,
        "actor_user_id": event.actor_user_id,
        "subject_user_id": event.subject_user_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "details": dict(event.details or {}),
    }


def _api_subject(who: str | None) -> int | None:
    """Whose rows: the caller's own, or (admins, in a browser) the named user's or everyone's."""
    if who is None:
        return current_user.id
    if not who.strip():
        fields = {"user": "Give a user id, an email address, or * for everyone."}
        raise ApiError(400, "invalid_query", "The query has errors.", fields)
    token = current_token()
    if token is not None:
        authn.record_scope_denial(token, scopes.SESSION_ONLY, request.endpoint, request_info())
        raise ApiError(403, "token_not_allowed", "An access token reads its owner's events only.")
    require_admin(current_user, "api.audit", info=request_info())
    if who.strip() == EVERYONE:
        return None
    try:
        return history.find_subject(who)
    except history.BadFilter as exc:
        raise ApiError(404, "user_not_found", "There is no such user.", exc.fields) from None


@api_bp.get("/audit")
@login_required
def list_events():
    fields(json_body())
    only_query((*FILTERS, "limit", "user"))
    subject_id = _api_subject(request.args.get("user"))
    try:
        event_filter = history.parse_filter(
            subject_id, **_filter_args(), limit=request.args.get("limit")
        )
    except history.BadFilter as exc:
        raise ApiError(400, "invalid_query", "The query has errors.", exc.fields) from None
    page = history.list_events(event_filter)
    return jsonify(events=[event_payload(e) for e in page.events], next_before=page.next_before)
