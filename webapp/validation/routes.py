"""Buttons on the dashboard that ask providers about stored keys."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_login import current_user, login_required
from wtforms import BooleanField

from webapp.forms import PageForm
from webapp.keys.inputs import require_provider
from webapp.validation import service
from webapp.validation.limits import key_checks
from webapp.web import request_info

bp = Blueprint("validation", __name__, url_prefix="/keys")


class ValidateForm(PageForm):
    # Opt-in: one tiny inference request, whose cost the dashboard states.
    deep = BooleanField("Deep check")


@bp.post("/validate-all")
@login_required
@key_checks
def validate_all():
    if not ValidateForm().validate_on_submit():
        abort(400)
    checked = service.validate_all(current_user, info=request_info())
    category, text = service.summary_of_all(checked)
    flash(text, category)
    return redirect(url_for("keys.dashboard"))


@bp.post("/<provider_id>/validate")
@login_required
@key_checks
def validate(provider_id: str):
    provider = require_provider(provider_id)
    form = ValidateForm()
    if not form.validate_on_submit():
        abort(400)
    result = service.validate_key(
        current_user, provider.id, deep=bool(form.deep.data), info=request_info()
    )
    category, text = service.summary(provider, result)
    flash(text, category)
    return redirect(url_for("keys.dashboard", _anchor=f"provider-{provider.id}"))
