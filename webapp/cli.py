"""Operator commands: ``flask keys ...``, ``flask setup-token``, ``flask create-admin``."""

from __future__ import annotations

import math
import sqlite3

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext

from webapp.audit.service import RequestInfo
from webapp.config_checks import not_utf8
from webapp.crypto import current_keyring
from webapp.extensions import db

#: who the audit trail says ran an operator command
CLI = RequestInfo(ip=None, user_agent="flask command")

keys_cli = AppGroup("keys", help="Manage stored API keys.")


def utf8_argument(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A click callback refusing an argument that is not UTF-8 text."""
    if isinstance(value, str) and not_utf8(value):
        raise click.BadParameter("not valid UTF-8 text; type it again in UTF-8.")
    return value


#: rows read and committed at once: past this a batch only costs memory, and a number past
#: the database's integers would fail inside the query
MAX_BATCH = 100_000


#: rows a command's output names one by one before it counts the rest
LISTED = 20


def _listed(rows: list[str]) -> str:
    """Rows named up to LISTED, then counted: thousands of them stay one readable line."""
    shown = ", ".join(rows[:LISTED])
    return shown if len(rows) <= LISTED else f"{shown} and {len(rows) - LISTED} more"


@keys_cli.command("rotate-secret")
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1, max=MAX_BATCH),
    help="Rows per commit.",
)
def rotate_secret_command(batch_size: int) -> None:
    """Re-encrypt every stored key under API_KEY_ENCRYPTION_SECRET.

    Safe to interrupt and run again. When it reports nothing left, the old
    secrets can be removed from API_KEY_ENCRYPTION_OLD_SECRETS.
    """
    from webapp.keys.rotation import pending_count, rotate_secret

    total = pending_count()
    version = current_keyring().current_version
    click.echo(f"{total} key(s) to re-encrypt under secret {version}.")
    with click.progressbar(length=total, label="Re-encrypting", show_pos=True) as bar:
        report = rotate_secret(batch_size=batch_size, progress=bar.update)
    click.echo(f"Re-encrypted {report.rewrapped} key(s).")
    for secret, count in sorted(report.unconfigured.items()):
        click.echo(
            f"{count} key(s) are under secret {secret}, which is not configured: add that "
            "secret to API_KEY_ENCRYPTION_OLD_SECRETS and run again.",
            err=True,
        )
    if report.damaged:
        click.echo(
            "Do not decrypt under their secret (tampered with, or moved to another owner; "
            f"left as they were): {_listed(report.damaged)}",
            err=True,
        )
    if report.unreadable:
        raise SystemExit(1)
    left = pending_count()
    if left:
        click.echo(f"{left} key(s) still under an old secret (changed during the run?); run again.")
        raise SystemExit(1)
    click.echo("Every key is under the current secret; old secrets can now be removed.")


MAX_HOURS = 100 * 366 * 24


def _finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of hours", param_hint=name)
    return value


@keys_cli.command("revalidate")
@click.option(
    "--older-than",
    "hours",
    # At most a century: a larger span (or inf, or nan, which no range refuses) is no date.
    type=click.FloatRange(min=0, max=MAX_HOURS),
    callback=lambda _ctx, _param, value: _finite(value, "--older-than"),
    metavar="HOURS",
    help="Only keys not checked within the last HOURS hours (default: every key).",
)
@click.option("--provider", help="Only this provider's keys (a provider id).")
@click.option(
    "--batch-size", default=50, show_default=True, type=click.IntRange(min=1, max=MAX_BATCH)
)
def revalidate_command(hours: float | None, provider: str | None, batch_size: int) -> None:
    """Check stored keys (users' and global) with their providers again; meant for cron.

    Statuses and audit rows are updated batch by batch. A key its provider now
    rejects is marked invalid and listed; a provider that is down or slow
    changes nothing known of a key. Exits 1 if any key could not be decrypted.
    """
    from datetime import timedelta

    from webapp.providers.catalog import get_provider
    from webapp.templating import status_label
    from webapp.validation.revalidate import revalidate

    if provider is not None and get_provider(provider) is None:
        raise click.BadParameter(f"unknown provider {provider!r}", param_hint="--provider")
    older = timedelta(hours=hours) if hours is not None else None
    report = revalidate(older_than=older, provider=provider, batch_size=batch_size, info=CLI)
    if not report.checked and not report.unreadable and not report.superseded:
        click.echo("No stored keys to check.")
        return
    counts = ", ".join(
        f"{n} {status_label(s).lower()}" for s, n in sorted(report.by_status.items())
    )
    click.echo(f"Checked {report.checked} key(s): {counts or 'none'}.")
    if report.superseded:
        click.echo(
            f"Replaced or deleted while being checked (left as that change left them): "
            f"{report.superseded} key(s)."
        )
    if report.turned_invalid:
        click.echo("Now rejected by their provider: " + ", ".join(report.turned_invalid) + ".")
    if report.unreadable:
        click.echo(f"Could not decrypt (not checked): {_listed(report.unreadable)}", err=True)
        raise SystemExit(1)


@keys_cli.command("purge-user")
@click.argument("email", callback=utf8_argument)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_user_command(email: str, yes: bool) -> None:
    """Delete the account of EMAIL with all its keys and access tokens.

    The audit trail keeps its rows and records the purge. The keys keep
    working at their providers: the user must revoke them there.
    """
    from webapp.auth.purge import PurgeRefused, purge_user

    if not yes:
        click.confirm(f"Delete the account {email} and all its keys and tokens?", abort=True)
    try:
        report = purge_user(email, info=CLI)
    except PurgeRefused as exc:
        raise click.ClickException(exc.message) from None
    names = ", ".join(report.providers) or "none"
    click.echo(
        f"Deleted user #{report.user_id}: {report.keys} key(s) ({names}), "
        f"{report.tokens} access token(s). The audit trail keeps its rows."
    )


#: SQLSTATEs of a table or column the database does not have (PostgreSQL)
_UNDEFINED = {"42P01", "42703"}
#: how SQLite words the same
_SQLITE_UNDEFINED = ("no such table", "no such column", "has no column named")


def _schema_not_there(exc: BaseException) -> bool:
    """Whether a driver error says that a table or column is missing."""
    if getattr(exc, "sqlstate", None) in _UNDEFINED:
        return True
    return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith(_SQLITE_UNDEFINED)


def _busy(exc: BaseException) -> bool:
    """Whether a driver error says that another process held a lock for too long."""
    if getattr(exc, "sqlstate", None) == "55P03":  # PostgreSQL: lock_not_available
        return True
    return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith(
        ("database is locked", "database table is locked")
    )


def _unreachable_for_operators(context: ExceptionContext) -> None:
    """In a command (``flask keys rotate-secret``, ``flask audit verify``...), a database that
    cannot be connected to, that does not hold this release's tables (``flask db upgrade``
    not run, or DATABASE_URL missing from a cron job's environment), or that another process
    keeps locked too long, is one line that says why and what to do, not two tracebacks with
    the reason at their end. The driver's reason names the host, port, user and database,
    never the password. Requests (``flask run``
    included) keep their own answer: a 503. ``flask db`` and ``flask shell`` show the error
    itself: a migration that fails is not the operator's mistake."""
    command = click.get_current_context(silent=True)
    if command is None or command.info_name == "run":
        return
    reason = " ".join(str(context.original_exception).split()) or "no reason given"
    if context.connection is None:
        raise click.ClickException(f"Keyhold cannot reach its database (DATABASE_URL): {reason}")
    if {"db", "shell"} & set(command.command_path.split()):
        return
    if _busy(context.original_exception):
        raise click.ClickException(
            "The database (DATABASE_URL) is busy: another process (the server, or another "
            "command) held it locked for longer than Keyhold waits. Nothing was changed; try "
            "again in a moment."
        )
    if _schema_not_there(context.original_exception):
        raise click.ClickException(
            f"The database (DATABASE_URL) does not hold the tables this release of Keyhold "
            f"needs ({reason}): run `flask --app webapp db upgrade` first, or check that "
            f"DATABASE_URL names the right database."
        )


def register(app: Flask) -> None:
    from webapp.audit.cli import audit_cli
    from webapp.setup.cli import create_admin_command, setup_token_command

    app.cli.add_command(keys_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(setup_token_command)
    app.cli.add_command(create_admin_command)
    with app.app_context():
        event.listen(db.engine, "handle_error", _unreachable_for_operators)
