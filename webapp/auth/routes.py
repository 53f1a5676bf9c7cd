"""Register, log in, log out, change password."""

from __future__ import annotations

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import confirm_login, current_user, login_required, logout_user

from webapp.auth import services
from webapp.auth.forms import (
    ConfirmPasswordForm,
    LoginForm,
    PasswordChangeForm,
    RegisterForm,
    normalise_email,
)
from webapp.extensions import limiter
from webapp.ratelimit import account_rate_key, configured, ip_rate_key
from webapp.tokens import service as tokens
from webapp.web import (
    SIGN_IN_AGAIN,
    form_status,
    no_store,
    password_given,
    password_recent,
    remembered,
    request_info,
    safe_next,
    sign_in,
)

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _password_account_key() -> str:
    """The account a password is tried against: the one signed in (confirming or changing
    its password), else the one the sign-in form names."""
    if current_user.is_authenticated:
        return account_rate_key(current_user.email)
    return account_rate_key(normalise_email(request.form.get("email", "")))


#: Wrong passwords tried against one account, wherever they are tried (signing in, confirming
#: a kept session, changing the password): one budget, or whoever holds a stolen remember-me
#: cookie would get a fresh one at each form. Only failures count: a stranger's guesses must
#: not stop the owner's own sign-ins on other devices from counting against the same budget.
password_guesses = limiter.shared_limit(
    configured("RATELIMIT_LOGIN_ACCOUNT"),
    scope="password-guess",
    key_func=_password_account_key,
    methods=["POST"],
    deduct_when=lambda response: response.status_code != 302,
)


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_REGISTER"), methods=["POST"], key_func=ip_rate_key)
def register():
    if current_user.is_authenticated:
        return redirect(url_for("keys.dashboard"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = services.register(form.email.data, form.password.data, info=request_info())
        except services.EmailTaken:
            form.email.errors.append("An account with this email already exists.")
        else:
            if not sign_in(user):
                flash(SIGN_IN_AGAIN, "error")
                return redirect(url_for("auth.login"))
            flash("Welcome to Keyhold. Add your first API key below.", "success")
            return redirect(url_for("keys.dashboard"))
    return render_template("auth/register.html", form=form), form_status(form)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_LOGIN_IP"), methods=["POST"], key_func=ip_rate_key)
@password_guesses
def login():
    if current_user.is_authenticated:  # signed in already (another tab): on to where it was going
        return redirect(safe_next(request.args.get("next"), url_for("keys.dashboard")))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data, info=request_info())
        # A sign-in that a password change (or the account's deletion) overtook after the
        # password was checked is refused like a wrong password: it is one now.
        if user is not None and sign_in(user, remember=form.remember.data):
            return redirect(safe_next(request.args.get("next"), url_for("keys.dashboard")))
        form.form_errors.append("Email or password is incorrect.")
    return render_template("auth/login.html", form=form), form_status(form)


@bp.post("/logout")
@login_required
def logout():
    services.logout(current_user._get_current_object(), info=request_info())
    # Cleared first: logout_user leaves in the session the word that deletes the remember-me
    # cookie, which clearing afterwards would throw away with the rest.
    session.clear()
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/confirm", methods=["GET", "POST"])
@login_required
@password_guesses  # a guessing oracle for whoever holds a stolen remember-me cookie
@no_store
def confirm():
    """Confirm the password of a session "Keep me signed in" brought back (not fresh),
    before what a stolen cookie must not do alone: creating access tokens."""
    target = safe_next(request.args.get("next"), url_for("keys.dashboard"))
    if password_recent():
        return redirect(target)
    form = ConfirmPasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if services.confirm_password(user, form.password.data, info=request_info()):
            confirm_login()
            password_given()
            return redirect(target)
        form.password.errors.append("That is not your password.")
    return render_template("auth/confirm.html", form=form), form_status(form)


@bp.route("/password", methods=["GET", "POST"])
@login_required
@password_guesses  # checking the current password is a guessing oracle for a stolen session
@no_store
def change_password():
    form = PasswordChangeForm()
    user = current_user._get_current_object()
    working_tokens = tokens.count_working(user)
    if form.validate_on_submit():
        changed = services.change_password(
            user,
            form.current.data,
            form.password.data,
            revoke_tokens=form.revoke_tokens.data,
            info=request_info(),
        )
        if changed:
            # The change ended every session, this one too; a browser that was kept signed in
            # stays so, under its new session.
            if not sign_in(user, remember=remembered()):
                flash(SIGN_IN_AGAIN, "error")
                return redirect(url_for("auth.login"))
            flash(_changed_message(changed), "success")
            return redirect(url_for("keys.dashboard"))
        form.current.errors.append("That is not your current password.")
    page = render_template("auth/password.html", form=form, working_tokens=working_tokens)
    return page, form_status(form)


def _changed_message(changed: services.PasswordChanged) -> str:
    message = "Your password was changed. Other sessions have been signed out."
    if changed.tokens_revoked:
        count = changed.tokens_revoked
        message += f" {count} access token{'s were' if count > 1 else ' was'} revoked."
    return message
