"""The flask CLI of SPEC.md: `flask --app wsgi create-admin`, `issue ...`, `subscribers ...`."""
from __future__ import annotations

import os

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from newsletter import accounts, subscriptions, suppression
from newsletter.extensions import db
from worker.tasks import enqueue_mail

issue_cli = AppGroup("issue", help="Import, send, test and follow issues.")
subscribers_cli = AppGroup("subscribers", help="Import, export and suppress readers.")


@click.command("create-admin")
@click.argument("email")
@with_appcontext
def create_admin(email: str) -> None:
    """Create an admin, or reset their password (ADMIN_PASSWORD or a prompt)."""
    password = os.environ.get("ADMIN_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        accounts.set_admin(email, password)
    except accounts.WeakPassword as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Admin {email.strip().lower()} can now sign in at /admin/login.")


@subscribers_cli.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--consent", type=click.Choice([subscriptions.IMPORT_ASK, subscriptions.IMPORT_ELSEWHERE]), required=True,
              help="ask: email each new reader to confirm; elsewhere: they already consented elsewhere (recorded).")
def import_subscribers(csv_file, consent: str) -> None:
    """Add readers from a CSV file with the header email,name."""
    try:
        result = subscriptions.import_csv(csv_file, consent, subscriptions.Origin(source="import", user_agent="flask cli"))
    except subscriptions.InvalidImport as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    enqueue_mail(result.mail_ids)
    for line, reason in result.invalid:
        click.echo(f"line {line}: {reason}", err=True)
    click.echo(f"{result.added} added, {result.existing} already known, {result.suppressed} suppressed, "
               f"{len(result.invalid)} invalid.")


@subscribers_cli.command("export")
def export_subscribers() -> None:
    """Print every reader as CSV."""
    for chunk in subscriptions.export_csv():
        click.echo(chunk, nl=False)


@subscribers_cli.command("suppress")
@click.argument("email")
@click.option("--reason", type=click.Choice(["bounced", "complained"]), required=True)
def suppress_subscriber(email: str, reason: str) -> None:
    """Never mail this address again."""
    try:
        address = subscriptions.normalize_email(email)
    except subscriptions.InvalidEmail as exc:
        raise click.ClickException(str(exc)) from exc
    suppression.suppress(address, reason, "flask cli")
    db.session.commit()
    click.echo(f"{address} is suppressed ({reason}).")


def register(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(issue_cli)
    app.cli.add_command(subscribers_cli)
