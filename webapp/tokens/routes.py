"""The /tokens page: list, create (shown once), rotate and revoke personal access tokens."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from webapp.db_types import utcnow
from webapp.tokens import policy, service
from webapp.tokens.bearer import write_limit
from webapp.tokens.forms import RevokeForm, RotateForm, TokenForm
from webapp.tokens.models import URL_ID
from webapp.web import form_status, no_store, password_recent, request_info

bp = Blueprint("tokens", __name__, url_prefix="/tokens")


def _confirm_first():
    """A browser that has not given its password lately (or that "Keep me signed in" brought
    back) confirms it before it creates a token: a stolen cookie alone must not turn into a
    credential of its own."""
    flash("Confirm your password to create or rotate access tokens.", "info")
    return redirect(url_for("auth.confirm", next=request.path))


def _issued_page(issued: service.IssuedToken, replaced=None):
    # Rendered, never redirected: the token must not pass through the session cookie.
    return render_template("tokens/issued.html", issued=issued, replaced=replaced, now=utcnow())


@bp.route("/", methods=["GET", "POST"])
@login_required
@write_limit
@no_store
def index():
    if request.method == "POST" and not password_recent():
        return _confirm_first()
    form = TokenForm().configure(current_app.config)
    if form.validate_on_submit():
        try:
            spec = service.clean_spec(
                form.name.data, form.chosen_scopes(), form.chosen_expiry(), form.allowed_ips.data
            )
            issued = service.create_token(current_user, spec, info=request_info())
        except (service.TokenInputError, service.TooManyTokens) as exc:
            form.form_errors.append(exc.message)
            for name, message in exc.fields.items():
                form[{"expires_in_days": "expires_in"}.get(name, name)].errors.append(message)
        else:
            return _issued_page(issued)
    tokens = service.list_tokens(current_user)
    page = render_template(
        "tokens/index.html", form=form, tokens=tokens, now=utcnow(), fresh=password_recent()
    )
    return page, form_status(form)


@bp.route(f"/{URL_ID}/rotate", methods=["GET", "POST"])
@login_required
@write_limit
@no_store
def rotate(token_id: int):
    if request.method == "POST" and not password_recent():
        return _confirm_first()
    token = service.get_token(current_user, token_id)
    form = RotateForm().configure(current_app.config)
    refusal = service.rotation_refusal(token)
    if refusal is None and form.validate_on_submit():
        grace, problem = policy.clean_grace(form.chosen_grace(), current_app.config)
        if problem:
            form.grace_hours.errors.append(problem)
        else:
            try:
                issued = service.rotate_token(
                    current_user, token.id, grace_hours=grace, info=request_info()
                )
            except service.TokenInactive as exc:  # expired or changed since the page was read
                refusal = exc.message
            else:
                return _issued_page(issued, replaced=service.get_token(current_user, token_id))
    page = render_template(
        "tokens/rotate.html",
        token=token,
        form=form,
        refusal=refusal,
        predecessor=service.predecessor_in_grace(token),
        now=utcnow(),
        fresh=password_recent(),
    )
    return page, 409 if refusal and request.method == "POST" else form_status(form)


@bp.route(f"/{URL_ID}/revoke", methods=["GET", "POST"])
@login_required
@no_store
def revoke(token_id: int):
    token = service.get_token(current_user, token_id)
    form = RevokeForm()
    # Revoked already (in another tab): the page says so and offers nothing to do.
    if token.revoked_at is None and form.validate_on_submit():
        service.revoke_token(current_user, token.id, info=request_info())
        flash(f"The token {token.name!r} ({token.token_hint}…) was revoked.", "success")
        return redirect(url_for(".index"))
    return render_template("tokens/revoke.html", token=token, form=form, now=utcnow())
