"""First start: the gate that sends everyone to /setup, and the setup pages themselves.

The setup pages ask for the setup token once and keep its proof in the
session; with it, the holder may enter global keys and create the first
admin account, which finishes setup. From then on /setup is a 404.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.exceptions import MethodNotAllowed

from webapp.admin.routes import edit_global_key
from webapp.errors import error_response, wants_json
from webapp.extensions import limiter
from webapp.keys import global_keys
from webapp.ratelimit import configured
from webapp.setup import service
from webapp.setup.forms import AdminAccountForm, SetupTokenForm
from webapp.setup.limits import token_guesses
from webapp.web import SIGN_IN_AGAIN, form_status, no_store, request_info, sign_in

bp = Blueprint("setup", __name__, url_prefix="/setup")

#: endpoints that work before setup: probes, static files, and the API's setup calls
GATE_EXEMPT = frozenset(
    {
        "static",
        "health.healthz",
        "health.readyz",
        "api.csrf_token",
        "api.openapi_document",
        "api.set_initial",
        "api.status_initial",
    }
)
_PROOF = "setup_proof"


@bp.before_app_request
def setup_gate():
    if request.blueprint == "setup" or request.endpoint in GATE_EXEMPT:
        return None
    if isinstance(request.routing_exception, MethodNotAllowed):
        return None  # the 405 (with Allow) follows: no method is more allowed after setup
    if service.setup_finished():
        return None
    service.ensure_token()
    if wants_json():
        return error_response(
            503, "setup_required", "Keyhold is not set up yet: an admin must finish /setup first."
        )
    return redirect(url_for("setup.index"))


@bp.before_request
def only_during_setup():
    if service.setup_finished():
        if request.method == "POST" and request.endpoint == "setup.token":
            service.refuse_after_setup(request_info())
        abort(404)


def _has_proof() -> bool:
    return service.proof_is_current(session.get(_PROOF))


@bp.get("")
@no_store
def index():
    service.ensure_token()
    if not _has_proof():
        return render_template("setup/token.html", form=SetupTokenForm())
    statuses = global_keys.list_global_status()
    return render_template("setup/index.html", statuses=statuses, form=AdminAccountForm())


@bp.post("/token")
@token_guesses()
@no_store
def token():
    form = SetupTokenForm()
    if form.validate_on_submit():
        try:
            session[_PROOF] = service.open_setup(form.token.data, info=request_info())
        except service.SetupTokenRefused as exc:
            form.token.errors.append(exc.message)
        else:
            return redirect(url_for(".index"))
    return render_template("setup/token.html", form=form), form_status(form)


@bp.route("/keys/<provider_id>", methods=["GET", "POST"])
@limiter.limit(configured("RATELIMIT_KEY_WRITE"), methods=["POST"])
@no_store
def key(provider_id: str):
    if not _has_proof():
        return redirect(url_for(".index"))
    return edit_global_key(provider_id, actor=None, back=url_for(".index"))


@bp.post("/finish")
@no_store
def finish():
    if not _has_proof():
        return redirect(url_for(".index"))
    form = AdminAccountForm()
    if form.validate_on_submit():
        try:
            user = service.complete_setup(
                session[_PROOF], form.email.data, form.password.data, info=request_info()
            )
        except service.AccountRefused as exc:
            form.email.errors.append(exc.fields.get("email", exc.message))
        else:
            if not sign_in(user):  # a fresh session for the new admin: no fixation
                flash(SIGN_IN_AGAIN, "error")
                return redirect(url_for("auth.login"))
            flash("Setup is finished. You are signed in as the admin.", "success")
            return redirect(url_for("admin.keys"))
    statuses = global_keys.list_global_status()
    page = render_template("setup/index.html", statuses=statuses, form=form)
    return page, form_status(form)
