"""The flask CLI of SPEC.md: `flask --app wsgi create-admin`, `issue ...`, `subscribers ...`."""
from __future__ import annotations

import os

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from newsletter import accounts
from newsletter.extensions import db

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


def register(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(issue_cli)
    app.cli.add_command(subscribers_cli)
