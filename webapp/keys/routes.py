"""The key dashboard and the add/replace/delete forms."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from webapp.extensions import limiter
from webapp.keys import service
from webapp.keys.forms import ConfirmForm, key_form_class
from webapp.providers.catalog import PROVIDERS, Provider, get_provider
from webapp.ratelimit import user_rate_key
from webapp.validation.service import saved_message
from webapp.web import form_status, no_store, request_info

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
    statuses = service.list_status(current_user)
    return render_template(
        "keys/dashboard.html",
        statuses=statuses,
        confirm=ConfirmForm(),
        providers=PROVIDERS,
    )


@bp.route("/<provider_id>", methods=["GET", "POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["RATELIMIT_KEY_WRITE"], methods=["POST"], key_func=user_rate_key
)
@no_store
def edit(provider_id: str):
    provider = _provider_or_404(provider_id)
    status = service.key_status(current_user, provider.id)
    form = key_form_class(provider)(data=status.config)
    if form.validate_on_submit():
        extra = {spec.name: form[spec.name].data for spec in provider.extra_fields}
        try:
            row, created = service.save_key(
                current_user, provider.id, form.api_key.data, extra, info=request_info()
            )
        except (service.InvalidKeyInput, service.KeyRejected) as exc:
            for name, message in exc.fields.items():
                form[name].errors.append(message)
        else:
            flash(*saved_message(provider, row, created))
            return redirect(url_for(".dashboard"))
    return render_template(
        "keys/edit.html", provider=provider, form=form, status=status
    ), form_status(form)


@bp.route("/<provider_id>/delete", methods=["GET", "POST"])
@login_required
@no_store
def delete(provider_id: str):
    provider = _provider_or_404(provider_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        service.delete_key(current_user, provider.id, info=request_info())
        flash(f"Your {provider.name} key was deleted.", "success")
        return redirect(url_for(".dashboard"))
    status = service.key_status(current_user, provider.id)
    if not status.has_key:
        abort(404)
    return render_template("keys/delete.html", provider=provider, status=status, form=form)
