"""Admin pages: the server-wide fallback keys. Admins never see users' keys here."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from webapp.admin.access import admin_required
from webapp.admin.forms import FallbackForm
from webapp.auth.models import User
from webapp.keys import global_keys
from webapp.keys.errors import InvalidKeyInput, KeyRejected, KeyReplaced
from webapp.keys.forms import ConfirmForm, DeleteKeyForm, key_form_class
from webapp.keys.inputs import require_provider
from webapp.keys.limits import global_key_writes
from webapp.templating import status_label
from webapp.validation.limits import key_checks
from webapp.web import confirm_delete, form_status, no_store, request_info

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _admin() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


@bp.get("/keys")
@admin_required
@no_store
def keys():
    statuses = global_keys.list_global_status()
    return render_template(
        "admin/keys.html", statuses=statuses, confirm=ConfirmForm(), fallback=FallbackForm()
    )


def edit_global_key(provider_id: str, *, actor: User | None, back: str):
    """The add/replace form for a global key; shared by the admin and setup pages."""
    provider = require_provider(provider_id)
    status = global_keys.global_status(provider.id)
    form = key_form_class(provider)(data=status.key.config)
    if form.validate_on_submit():
        extra = {spec.name: form[spec.name].data for spec in provider.extra_fields}
        try:
            row, created = global_keys.save_global_key(
                provider.id, form.api_key.data, extra, actor=actor, info=request_info()
            )
        except (InvalidKeyInput, KeyRejected) as exc:
            for name, message in exc.fields.items():
                (form[name].errors if name in form else form.form_errors).append(message)
        else:
            verb = "added" if created else "replaced"
            said = f" {row.last_error}" if row.last_error else ""
            flash(
                f"The global {provider.name} key was {verb}. "
                f"Status: {status_label(row.status)}.{said}",
                "success" if row.is_valid or row.status == "unchecked" else "warning",
            )
            return redirect(back)
    page = render_template(
        "admin/global_key.html", provider=provider, form=form, status=status, back=back
    )
    return page, form_status(form)


@bp.route("/keys/<provider_id>", methods=["GET", "POST"])
@admin_required
@global_key_writes
@no_store
def edit(provider_id: str):
    return edit_global_key(provider_id, actor=_admin(), back=url_for(".keys"))


@bp.route("/keys/<provider_id>/delete", methods=["GET", "POST"])
@admin_required
@no_store
def delete(provider_id: str):
    provider = require_provider(provider_id)
    form = DeleteKeyForm()
    refused = None
    if form.validate_on_submit():
        try:
            global_keys.delete_global_key(
                provider.id, actor=_admin(), info=request_info(), shown=form.shown.data
            )
        except KeyReplaced as exc:
            refused = exc
        else:
            flash(f"The global {provider.name} key was deleted.", "success")
            return redirect(url_for(".keys"))
    status = global_keys.global_status(provider.id)
    if not status.key.has_key:
        abort(404)
    return confirm_delete(
        "admin/delete.html", form, refused, provider=provider, status=status, shown=status.key
    )


@bp.post("/keys/<provider_id>/fallback")
@admin_required
def fallback(provider_id: str):
    provider = require_provider(provider_id)
    form = FallbackForm()
    if not form.validate_on_submit():
        abort(400)
    enabled = form.enabled.data == "on"
    global_keys.set_fallback(provider.id, enabled, actor=_admin(), info=request_info())
    state = "may now use" if enabled else "no longer use"
    flash(f"Users without a {provider.name} key of their own {state} the global key.", "success")
    return redirect(url_for(".keys"))


@bp.post("/keys/<provider_id>/validate")
@admin_required
@key_checks
def validate(provider_id: str):
    provider = require_provider(provider_id)
    result = global_keys.validate_global_key(provider.id, actor=_admin(), info=request_info())
    flash(
        f"Checked the global {provider.name} key: {status_label(result.status)}. "
        f"{result.describe()}".strip(),
        "success" if result.status == "valid" else "warning",
    )
    return redirect(url_for(".keys"))
