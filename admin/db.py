"""`cli.py db`: the database's schema."""

from __future__ import annotations

import click

from admin.common import database_url
from store.migrate import upgrade as upgrade_schema


@click.group()
def db() -> None:
    """The database: bring its schema up to date."""


@db.command()
@database_url
def upgrade(database_url: str) -> None:
    """Apply every pending migration (what `make run` does before starting the bot)."""
    upgrade_schema(database_url)
    click.echo("database schema is up to date")
