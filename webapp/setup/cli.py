"""Operator commands for first start: ``flask setup-token`` and ``flask create-admin``."""

from __future__ import annotations

import os

import click
from flask.cli import with_appcontext

from webapp.cli import CLI as _CLI
from webapp.cli import utf8_argument
from webapp.config_checks import not_utf8
from webapp.setup import service

PASSWORD_ENV = "KEYHOLD_ADMIN_PASSWORD"


@click.command("setup-token")
@click.option(
    "--first-start",
    is_flag=True,
    help="Only create the first token if setup is not finished and there is none; it goes to "
    "the log and the token file, as when the first page is opened. Changes nothing otherwise.",
)
@with_appcontext
def setup_token_command(first_start: bool) -> None:
    """Print a fresh one-time setup token; the previous one stops working."""
    if first_start:
        service.ensure_token()
        return
    try:
        token, written = service.issue_token(info=_CLI)
    except service.SetupFinished as exc:
        raise click.ClickException(exc.message) from None
    click.echo(token)
    where = f"also written to {written}" if written else f"not written to {service.token_file()}"
    click.echo(f"({where}; open /setup to use it)", err=True)


@click.command("create-admin")
@click.argument("email", callback=utf8_argument)
@with_appcontext
def create_admin_command(email: str) -> None:
    """Create an admin account for EMAIL.

    The password is asked for (twice), or taken from the environment variable
    KEYHOLD_ADMIN_PASSWORD for scripted deployments. Creating the first admin
    finishes setup: the setup token stops working.
    """
    from_env = bool(os.environ.get(PASSWORD_ENV))
    password = os.environ.get(PASSWORD_ENV) or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    if not_utf8(password):
        # Bytes that are not UTF-8 (a terminal or a file in another encoding) arrive as lone
        # surrogates: no password anyone could type into the sign-in form.
        source = f"{PASSWORD_ENV} is" if from_env else "The password typed is"
        raise click.ClickException(f"{source} not valid UTF-8 text; set it again in UTF-8.")
    try:
        user, finished = service.create_admin(email, password, info=_CLI)
    except service.AccountRefused as exc:
        reasons = "; ".join(exc.fields.values()) or exc.message
        raise click.ClickException(f"{exc.message} {reasons}") from None
    click.echo(f"Admin account {user.email} created.")
    if finished:
        click.echo("Setup is finished; the setup token no longer works.")
