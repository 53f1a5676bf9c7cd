"""The key dashboard and the add/replace/delete forms."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from webapp.db_types import utcnow
from webapp.keys import expiry, service, statuses
from webapp.keys.errors import InvalidKeyInput, KeyRejected, KeyReplaced
from webapp.keys.forms import (
    ConfirmForm,
    DeleteKeyForm,
    ExpiryForm,
    UserKeyForm,
    key_form_class,
)
from webapp.keys.limits import key_writes
from webapp.providers.catalog import PROVIDERS, Provider, get_provider
from webapp.validation.service import saved_message
from webapp.web import confirm_delete, form_status, no_store, request_info

bp = Blueprint("keys", __name__, url_prefix="/keys")


def _provider_or_404(provider_id: str) -> Provider:
    provider = get_provider(provider_id)
    if provider is None:
        abort(404)
    return provider


@bp.get("/")
@login_required
@no_store
def dashboard():
    found = statuses.list_status(current_user)
    return render_template(
        "keys/dashboard.html",
        statuses=found,
        confirm=ConfirmForm(),
        providers=PROVIDERS,
    )


def _edit_page(
    provider: Provider, status: statuses.KeyStatus, form, expiry_form, *, refused: bool = False
):
    """The key's page; its reminder form names the key shown. After a reminder refused for
    a key replaced meanwhile, the same page for the key stored now: a 409."""
    expiry_form.shown.data = status.fingerprint
    page = render_template(
        "keys/edit.html", provider=provider, form=form, status=status, expiry_form=expiry_form
    )
    return page, 409 if refused else max(form_status(form), form_status(expiry_form))


def _reminder(status: statuses.KeyStatus) -> dict:
    return {"expires_at": status.expires_at.date() if status.expires_at else None}


def _key_form(provider: Provider, status: statuses.KeyStatus, **kwargs):
    """The add/replace form, filled in with the stored settings and a reminder still ahead: a
    key being replaced because it expired must not fail on its old date."""
    reminder = _reminder(status)
    if reminder["expires_at"] is not None and reminder["expires_at"] < utcnow().date():
        reminder["expires_at"] = None
    return key_form_class(provider, UserKeyForm)(data={**status.config, **reminder}, **kwargs)


@bp.route("/<provider_id>", methods=["GET", "POST"])
@login_required
@key_writes
@no_store
def edit(provider_id: str):
    provider = _provider_or_404(provider_id)
    status = statuses.key_status(current_user, provider.id)
    form = _key_form(provider, status)
    if form.validate_on_submit():
        extra = {spec.name: form[spec.name].data for spec in provider.extra_fields}
        try:
            row, created = service.save_key(
                current_user,
                provider.id,
                form.api_key.data,
                extra,
                info=request_info(),
                expires_at=expiry.parse_expiry(form.expires_at.data),
            )
        except (InvalidKeyInput, KeyRejected) as exc:
            for name, message in exc.fields.items():
                form[name].errors.append(message)
        else:
            flash(*saved_message(provider, row, created))
            return redirect(url_for(".dashboard"))
    return _edit_page(provider, status, form, ExpiryForm(formdata=None, data=_reminder(status)))


@bp.post("/<provider_id>/expiry")
@login_required
@key_writes
@no_store
def set_expiry(provider_id: str):
    provider = _provider_or_404(provider_id)
    status = statuses.key_status(current_user, provider.id)
    if not status.has_key:
        abort(404)
    form = ExpiryForm()
    refused = False
    if form.validate_on_submit():
        try:
            when = expiry.parse_expiry(form.expires_at.data)
            expiry.set_expiry(
                current_user, provider.id, when, info=request_info(), shown=form.shown.data
            )
        except InvalidKeyInput as exc:
            form.expires_at.errors.extend(exc.fields.values())
        except KeyReplaced as exc:
            form.expires_at.errors.append(str(exc))
            refused = True
            status = statuses.key_status(current_user, provider.id)
        else:
            text = f"on {when:%Y-%m-%d}" if when else "cleared"
            flash(f"The expiry reminder of your {provider.name} key was {text}.", "success")
            return redirect(url_for(".dashboard"))
    key_form = _key_form(provider, status, formdata=None)
    return _edit_page(provider, status, key_form, form, refused=refused)


@bp.route("/<provider_id>/delete", methods=["GET", "POST"])
@login_required
@no_store
def delete(provider_id: str):
    provider = _provider_or_404(provider_id)
    form = DeleteKeyForm()
    refused = None
    if form.validate_on_submit():
        try:
            service.delete_key(
                current_user, provider.id, info=request_info(), shown=form.shown.data
            )
        except KeyReplaced as exc:
            refused = exc
        else:
            flash(f"Your {provider.name} key was deleted.", "success")
            return redirect(url_for(".dashboard"))
    status = statuses.key_status(current_user, provider.id)
    if not status.has_key:
        abort(404)
    return confirm_delete(
        "keys/delete.html", form, refused, shown=status, provider=provider, status=status
    )
