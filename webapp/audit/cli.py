"""``flask audit verify`` and ``flask audit prune``."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import AppGroup

from webapp.audit.integrity import ChainBroken, prune, verify_chain

audit_cli = AppGroup("audit", help="Check and prune the audit trail.")


@audit_cli.command("verify")
def verify_command() -> None:
    """Walk the hash chain and name the first row that was changed or deleted.

    Exits 1 when the chain is broken; meant for cron. Record the printed head
    hash somewhere else: a later run that does not reach it means rows were
    cut from the end.
    """
    report = verify_chain()
    if not report.ok:
        click.echo(f"Audit trail BROKEN: {report.problem.message}.", err=True)  # type: ignore[union-attr]
        click.echo(f"{report.checked} row(s) verified before the break.", err=True)
        raise SystemExit(1)
    if report.head_id is None:
        click.echo("Audit trail is empty: nothing to verify.")
        return
    click.echo(
        f"Audit trail intact: {report.checked} row(s) from {report.start} "
        f"to #{report.head_id} (head hash {report.head_hash})."
    )


@audit_cli.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1, max=36_600),  # a century; further back is no date
    required=True,
    metavar="DAYS",
    help="Delete rows recorded more than DAYS days ago.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Prune even if the rows to delete fail verification (the problem is recorded).",
)
def prune_command(days: int, force: bool) -> None:
    """Delete old rows, leaving a checkpoint so the rest still verifies."""
    try:
        report = prune(timedelta(days=days), force=force)
    except ChainBroken as exc:
        click.echo(
            f"Not pruned: {exc.problem.message}. Investigate first, or pass --force.", err=True
        )
        raise SystemExit(1) from None
    if not report.pruned:
        click.echo(f"Nothing older than {days} day(s) to prune.")
        return
    click.echo(f"Pruned {report.pruned} row(s) up to #{report.through_id}; checkpoint recorded.")
